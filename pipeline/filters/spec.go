package filters

import "time"

// Spec describes a filter: which programs it reads and which lines of
// theirs are failures. It is plain data; package pipeline checks and
// compiles it (pipeline.CompileFilter), so a Spec from a config file and a
// built-in one go through the same checks.
//
// New kinds of declaration (the daemons a filter trusts to write its
// lines, say) are new fields here, each documented as these are, with its
// check in pipeline.CompileFilter and its column, where users need it, in
// the generated table of docs/filters.md.
type Spec struct {
	Name string
	// Summary says in one line what the filter catches, for the table in
	// docs/filters.md (Markdown; no "|").
	Summary string
	// Programs are the app names it reads: exact ("sshd", "postfix/smtpd")
	// or path.Match globs ("postfix*/smtpd").
	Programs []string
	// FailRegex are Go RE2 regexes with the placeholder <HOST>, matched
	// against Message.Text. Each must be anchored with ^ and contain <HOST>
	// exactly once. It may be empty only when Correlate is not.
	FailRegex []string
	// IgnoreRegex: a line matching any of these is not a failure. They must
	// be anchored with ^ too; <HOST> is allowed but not required.
	IgnoreRegex []string
	// Modes adds failregexes by mode name (sshd: "ddos", "aggressive"). A
	// jail running mode M uses FailRegex plus Modes[M]; "normal" or "" is
	// FailRegex alone.
	Modes map[string][]string
	// Vars are default values of <VAR:name> placeholders in this filter's
	// patterns (named's flooded domains, apache's probed paths). Each
	// expands to an alternation of the quoted literals; config may replace
	// a filter's vars.
	Vars map[string][]string
	// Correlate are multi-line failures: a line that opens a pending
	// failure under a key, completed by a later line with the same key.
	Correlate []Correlation
	// Attempts, when set, counts one client attempt once however many
	// failure lines the daemon and its PAM stack print about it.
	Attempts *AttemptRules
	// Engine is "" or "re2" (Go's RE2, linear time: every built-in filter)
	// or "backtrack": all the filter's patterns run on a backtracking
	// engine, for look-around, back-references, atomic groups and
	// possessive quantifiers, each match bounded by MatchTimeout
	// (pipeline/backtrack.go). Never chosen unless set.
	Engine string
	// MatchTimeout bounds one match of a backtracking pattern; 0 means
	// 10ms, at most 100ms. A match that runs out of time is no match.
	MatchTimeout time.Duration
	// Trust is whom the filter believes when the kernel, or a forwarder
	// passing on the kernel's word, vouches for a line's sender
	// (pipeline/provenance.go). Every built-in filter declares it.
	Trust Trust
}

// AttemptRules classify a filter's failure lines (lines a failregex
// matched) so that one client attempt counts one failure (issue 15; the
// accounting is pipeline/attempt.go's). Each is a Go regex anchored with ^,
// matched against the line's text, without <HOST>. A failure line none of
// them matches counts one failure, as without rules.
//
// The lines of one attempt are tied by the client's address and by kind:
// an attempt holds at most one line of each kind. A line joins the oldest
// open attempt of its address without a line of its kind and counts
// nothing, or opens a new attempt and counts one failure. An end line
// counts the attempts nothing counted since the address's last end line.
type AttemptRules struct {
	// Lines are the kinds of line one attempt prints: a line matching
	// Lines[k] is of kind k (the first that matches). At most 64.
	Lines []string
	// Quiet lines count nothing on their own (a passdb that does not know
	// the user, when a later one may).
	Quiet []string
	// Ends say a session ended; a (?P<n>\d+) group gives its number of
	// attempts, a (?P<more>\d+) group the number beyond the first (PAM's
	// "PAM 5 more authentication failures"), 1 without either.
	Ends []string
	// Window is how long an attempt stays open for its other lines; 0
	// means 10 seconds.
	Window time.Duration
	// Provisional are Lines whose attempt may yet succeed: a PAM module
	// stacked "sufficient" before another (pam_unix before pam_sss or
	// pam_ldap) logs its failure and the next module accepts. An attempt
	// such a line opens is held: it counts when a line of another kind
	// joins it (the daemon's verdict), when the address opens another
	// attempt or ends a session, or at the address's next line once its
	// window has passed; a Success line drops it uncounted.
	Provisional []string
	// Success lines, with <HOST>, say the address's latest attempt
	// succeeded (sshd's "Accepted password for bob from 192.0.2.7
	// port 4444 ssh2"): its held attempt is dropped. They are not
	// failure lines and erase nothing counted. A sender's provisional
	// lines are held only once it has logged a Success line (it logs
	// verdicts); before, each counts at once.
	Success []string
	// Resends are failure lines a client's retransmissions repeat: a UDP
	// client resends its first packet until it is answered (OpenVPN,
	// with exponential backoff, for its whole handshake window), and a
	// server that drops it logs every copy. Each has a (?P<session>...)
	// group naming the client's endpoint (its source port): the lines of
	// one address and session are one attempt, counted once, for
	// ResendWindow from the first; a line after that, or of another
	// session, is another attempt. A line matching a Resends rule is a
	// resend whatever else it matches.
	Resends []string
	// ResendWindow is how long one session's resends are one attempt,
	// from its first line; 0 means 60 seconds.
	ResendWindow time.Duration
}

// Trust says whose lines a filter believes: the users (names or uids;
// names the host does not have are skipped) that run the daemon it reads,
// and, when the voucher names them, its executables (base names, also
// compared with the kernel's comm) and systemd units (path.Match globs).
// Daemons log through a privileged process (sshd's monitor, dovecot's log
// process, postfix's master), so root is in every list. Empty Users: the
// filter declares nobody, and provenance is not checked for it (a jail
// with provenance require refuses such a filter). Internal marks sysban's
// own sources (NFLOG), which never pass through a socket.
type Trust struct {
	Users    []string
	Exes     []string
	Units    []string
	Internal bool
}

// Correlation is a failure told by two lines of one filter's programs, with
// other lines interleaved: e.g. sendmail's "<qid>: AUTH failure" completed
// by "<qid>: ... [IP] did not issue MAIL...", or sshd's pid with
// "Connection from IP" then "Disconnecting: Too many authentication
// failures". Exactly one of Open and Close contains <HOST>; the failure
// counts for that host.
//
// A line is tried against FailRegex first, then the Closes, then the Opens,
// and does one thing only. A key opened again keeps its latest open; a
// Close completes at most one open; a Close without an open (or after
// Window) is not a failure. Keys are scoped by the message's hostname, so
// pids and queue ids of different senders never meet. Correlations with
// the same Open and Window share their pending opens, which is how one
// Open gets several alternative Closes. Windows run on the pipeline's clock,
// never the message's timestamp (the sender chooses that).
type Correlation struct {
	// Open starts a pending failure. The key is its (?P<key>...) group or,
	// when it has none, the message's ProcID. Anchored with ^.
	Open string
	// Close completes it when it carries the same key (its own
	// (?P<key>...) group or ProcID) within Window. Anchored with ^.
	Close string
	// Window is how long an open key waits; 0 means 10 minutes.
	Window time.Duration
	// Summary says in one line which lines it ties and by what, for the
	// table in docs/filters.md (Markdown; no "|"). Correlations that
	// share an Open may share a Summary; the table lists it once.
	Summary string
	// Modes, when not empty, are the only modes whose jails use it: a
	// probe told by two lines counts where Modes[M]'s one-line probes do.
	Modes []string
}
