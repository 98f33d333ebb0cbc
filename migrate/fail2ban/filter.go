package fail2ban

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sysban/sysban/pipeline"
)

// PatternResult says what became of one failregex or ignoreregex.
type PatternResult struct {
	Kind   string `json:"kind"`             // failregex or ignoreregex
	From   string `json:"from"`             // as fail2ban reads it (interpolated)
	To     string `json:"to,omitempty"`     // sysban's pattern; empty when not carried
	Status Status `json:"status"`           // carried, changed or dropped
	Why    string `json:"reason,omitempty"` // for changed and dropped
	// Backtracking is set when the pattern needs the backtracking engine
	// (look-around, back-references, atomic groups): its filter then
	// runs on it (engine: backtrack).
	Backtracking bool `json:"backtracking,omitempty"`
}

// FilterResult is a translated filter.d file.
type FilterResult struct {
	Name     string               `json:"name"`           // sysban filter name
	Source   string               `json:"source"`         // fail2ban filter name (filter.d/<source>.conf)
	Args     map[string]string    `json:"args,omitempty"` // the jail's arguments to it ([mode=...])
	Files    []string             `json:"files"`          // read, in order
	Spec     *pipeline.FilterSpec `json:"-"`              // nil when not carried
	Patterns []PatternResult      `json:"patterns"`
	Notes    []Item               `json:"notes,omitempty"`
	// NotCarried says why the filter as a whole could not be carried.
	NotCarried string `json:"not_carried,omitempty"`
	// ProgramsGuessed is set when no _daemon or journalmatch named the
	// programs: the user must check them.
	ProgramsGuessed bool `json:"programs_guessed,omitempty"`
}

// prefixMarker stands for fail2ban's syslog line prefix ("host prog[pid]: ")
// while patterns are interpolated; sysban matches after that prefix.
const prefixMarker = "\x00PREFIX\x00"

// prefixNames are the names fail2ban's common.conf gives the line prefix
// (0.8 called it __line_prefix).
var prefixNames = []string{"__prefix_line", "__line_prefix", "__prefix_line_sl"}

// regexTags are fail2ban's pattern tags, which are not option references.
var hostTags = []string{"<HOST>", "<ADDR>", "<IP4>", "<IP6>", "<DNS>", "<CIDR>", "<SUBNET>"}

var (
	tagRE = lazyRegexp(`<([A-Za-z_][A-Za-z0-9_./-]*)>`)
	// leadingProgram finds a 0.8-era pattern's program tag: "vchkpw-smtp: ".
	leadingProgram = lazyRegexp(`^\^?([A-Za-z][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.-]+)*)(?:\\\[\\d\+\\\])?: `)
	fieldTagRE     = lazyRegexp(`</?F-[A-Za-z0-9_-]+>`)
	hostGroup      = lazyRegexp(`\(\?P<host>`)
	contentRE      = lazyRegexp(`<F-CONTENT>(.*?)</F-CONTENT>`)
	// Python forms RE2 lacks, each a reason a pattern needs backtracking.
	backtrackForms = []struct {
		re   func() *regexp.Regexp
		what string
	}{
		{lazyRegexp(`\(\?<?[=!]`), "look-around"},
		{lazyRegexp(`\(\?P=|\\[1-9]`), "a back-reference"},
		{lazyRegexp(`\(\?>`), "an atomic group"},
		{lazyRegexp(`[*+?}]\+`), possessive},
	}
)

const possessive = "a possessive quantifier"

// translateFilter reads filter.d/name as fail2ban would for a jail that
// passes args (its filter = name[args]) and translates it.
func translateFilter(fsys fs.FS, name, sysbanName string, args map[string]string) FilterResult {
	res := FilterResult{Name: sysbanName, Source: name, Args: args}
	l, err := readLayers(fsys, "filter.d/"+name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			res.NotCarried = fmt.Sprintf("filter.d/%s.conf not found: fail2ban would not start this jail", name)
		} else {
			res.NotCarried = err.Error()
		}
		return res
	}
	res.Files = l.Files()
	vars := map[string]string{}
	for k, v := range args {
		vars[k] = v
	}
	for _, p := range prefixNames {
		vars[p] = prefixMarker
	}
	// [Init] values: the jail's arguments win over them.
	init := map[string]string{}
	for _, k := range l.OwnKeys("Init") {
		if v, err := l.Get("Init", k, nil); err == nil {
			init[k] = v
		}
	}
	for k, v := range args {
		init[k] = v
	}
	get := func(key string) (string, error) {
		v, err := l.Get("Definition", key, vars)
		if errors.Is(err, ErrNoOption) {
			if iv, ok := init[key]; ok {
				return iv, nil
			}
			return "", err
		}
		if err != nil {
			return "", err
		}
		return substituteTags(v, func(tag string) (string, bool) {
			if iv, ok := init[tag]; ok {
				return iv, true
			}
			if strings.Contains(tag, "/") { // <section/key>, e.g. guacamole's <L_catalina/failregex>
				v, err := l.GetRef("Definition", tag, vars)
				return v, err == nil
			}
			v, err := l.Get("Definition", tag, vars)
			return v, err == nil
		})
	}
	fail, err := get("failregex")
	if err != nil && !errors.Is(err, ErrNoOption) {
		res.NotCarried = "failregex: " + err.Error()
		return res
	}
	ignore, err := get("ignoreregex")
	if err != nil && !errors.Is(err, ErrNoOption) {
		res.NotCarried = "ignoreregex: " + err.Error()
		return res
	}
	pref, err := get("prefregex")
	if err != nil && !errors.Is(err, ErrNoOption) {
		res.NotCarried = "prefregex: " + err.Error()
		return res
	}
	daemon, _ := get("_daemon")
	journal, _ := get("journalmatch")
	programs, guessed := programsFor(name, daemon, journal)
	if guessed {
		if tags := programTags(fail); len(tags) > 0 {
			programs = tags
		}
	}
	res.ProgramsGuessed = guessed
	if guessed {
		res.Notes = append(res.Notes, Item{Status: StatusChanged, Key: "programs", To: strings.Join(programs, ", "),
			Why: "the filter names no daemon (_daemon) or journalmatch: the programs are guessed from its name or the program tags its patterns start with; check them"})
	}
	if ml, err := get("maxlines"); err == nil {
		if n, _ := strconv.Atoi(strings.TrimSpace(ml)); n > 1 {
			res.Notes = append(res.Notes, Item{Status: StatusDropped, Key: "maxlines", From: ml,
				Why: "sysban matches one message at a time; failures told by two lines are sysban correlations (as the built-in sendmail-auth and sshd do)"})
		}
	}
	if dp, err := get("datepattern"); err == nil && dp != "" {
		res.Notes = append(res.Notes, Item{Status: StatusChanged, Key: "datepattern", From: dp,
			Why: "sysban takes the time from the syslog header and counts on its own clock"})
	}
	if journal != "" {
		res.Notes = append(res.Notes, Item{Status: StatusChanged, Key: "journalmatch", From: journal, To: "programs: " + strings.Join(programs, ", "),
			Why: "sysban receives the journal through the forwarder and routes by program"})
	}

	spec := pipeline.FilterSpec{Name: sysbanName, Programs: programs}
	ignoreLost, backtracking := false, false
	for _, kind := range []string{"failregex", "ignoreregex"} {
		value := fail
		if kind == "ignoreregex" {
			value = ignore
		}
		for _, line := range strings.Split(value, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			pr := translatePattern(kind, strings.TrimSpace(line), pref, programs)
			backtracking = backtracking || pr.Backtracking && pr.Status != StatusDropped
			if pr.Status != StatusDropped {
				if kind == "failregex" {
					spec.FailRegex = append(spec.FailRegex, pr.To)
				} else {
					spec.IgnoreRegex = append(spec.IgnoreRegex, pr.To)
				}
			} else if kind == "ignoreregex" {
				ignoreLost = true
			}
			res.Patterns = append(res.Patterns, pr)
		}
	}
	if backtracking {
		// One engine per filter: the patterns RE2 could run go with them.
		spec.Engine = pipeline.EngineBacktrack
		res.Notes = append(res.Notes, Item{Status: StatusChanged, Key: "engine", To: "engine: " + pipeline.EngineBacktrack,
			Why: "a pattern uses a form only a backtracking engine runs (see its reason): all the filter's patterns run on sysban's bounded backtracking engine, each match limited to matchtimeout (10ms), a match that runs out counting as no match"})
	}
	switch {
	case ignoreLost:
		res.NotCarried = "an ignoreregex could not be carried: without it the filter would count lines fail2ban ignored"
	case len(spec.FailRegex) == 0:
		res.NotCarried = "no failregex could be carried"
	default:
		if _, err := pipeline.CompileFilter(spec); err != nil {
			res.NotCarried = err.Error()
		} else {
			res.Spec = &spec
		}
	}
	return res
}

// substituteTags replaces <name> tags that name options (fail2ban resolves
// them after interpolation, e.g. sshd's <mdre-normal>), recursively and
// bounded; pattern tags such as <HOST> resolve to nothing and stay.
func substituteTags(v string, lookup func(string) (string, bool)) (string, error) {
	for depth := 0; ; depth++ {
		changed := false
		out := tagRE().ReplaceAllStringFunc(v, func(t string) string {
			name := strings.ToLower(t[1 : len(t)-1])
			if slices.Contains(hostTags, strings.ToUpper(t)) || name == "skiplines" || strings.HasPrefix(name, "f-") {
				return t
			}
			if r, ok := lookup(name); ok {
				changed = true
				return r
			}
			return t
		})
		if len(out) > MaxValueSize {
			return "", fmt.Errorf("tag substitution longer than %d bytes", MaxValueSize)
		}
		if !changed {
			return out, nil
		}
		if depth >= MaxInterpolationDepth {
			return "", fmt.Errorf("<tag> substitution deeper than %d (a loop?)", MaxInterpolationDepth)
		}
		v = out
	}
}

// lazyRegexp compiles expr when first asked: the translator's patterns
// are for `sysban import-fail2ban`, and the daemon, which links this
// package, should not compile and hold them at start.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
