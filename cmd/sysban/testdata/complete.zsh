# Drives zsh's completion for real: an interactive zsh in a pseudo-terminal
# (module zsh/zpty) loads the script as the user would, then each query is
# typed and completed by a completion widget; a compadd wrapper prints the
# matches compadd keeps (those fitting what was typed). Markers are printed
# split ("@@E""ND@@") so the echo of the typed setup lines never matches.
#
#   zsh -f complete.zsh fpath|source SCRIPT QUERY...
#
# prints "@@Q" then the matches, one a line, for each query. Exit 3: no
# zsh/zpty module.
zmodload zsh/zpty 2>/dev/null || exit 3
mode=$1 script=$2
shift 2
case $mode in
fpath) load="fpath=(${(q)script:h} \$fpath); autoload -Uz compinit; compinit -u -D" ;;
source) load="autoload -Uz compinit; compinit -u -D; source ${(q)script}" ;;
*) print -u2 "unknown mode $mode"; exit 2 ;;
esac
zpty sh zsh -f -i
zpty -w sh "PS1='' RPS1=''; bindkey -e; $load"
zpty -w sh 'compadd() { if (( ${@[(I)-[OAD]*]} )); then builtin compadd "$@"; return; fi; local -a kept; builtin compadd -O kept "$@"; local m; for m in $kept; do print -r -- "@@HIT""@@$m@@"; done; builtin compadd "$@"; }'
zpty -w sh '_capture() { _main_complete; print -r -- "@@E""ND@@"; }; zle -C capture complete-word _capture; bindkey "^T" capture; print "@@READY""@@"'
zpty -r -m sh out '*@@READY@@*' || exit 4
for q in "$@"; do
	zpty -w -n sh "$q"$'\C-t'
	zpty -r -m sh out '*@@END@@*' || { print -u2 "no answer to $q"; exit 4 }
	print -r -- "@@Q"
	print -r -- "$out" | grep -ao '@@HIT@@.*@@' | sed 's/^@@HIT@@//; s/@@$//'
	zpty -w -n sh $'\C-u'
done
zpty -d sh
