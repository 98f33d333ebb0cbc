package fail2ban

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Layers is a set of files read in fail2ban's order and merged: later files
// override the keys they set, section by section.
type Layers struct {
	fsys     fs.FS
	files    []string // read, in order
	order    []string // section names in order of first appearance
	sections map[string]*layeredSection
}

type layeredSection struct {
	values map[string]string
	// known holds the value a key had before the latest file overrode it:
	// what %(known/key)s refers to.
	known map[string]string
}

// readLayers reads base as fail2ban does: base.conf, base.d/*.conf,
// base.local, base.d/*.local, each with its includes. base is a path in
// fsys without extension ("jail", "filter.d/sshd"). A missing base.conf is
// fine when base.local exists; no file at all is fs.ErrNotExist.
func readLayers(fsys fs.FS, base string) (*Layers, error) {
	l := &Layers{fsys: fsys, sections: map[string]*layeredSection{}}
	var names []string
	for _, ext := range []string{".conf", ".local"} {
		names = append(names, base+ext)
		d, _ := fs.Glob(fsys, globQuote(base+".d")+"/*"+ext)
		slices.Sort(d)
		names = append(names, d...)
	}
	for _, name := range names {
		if !exists(fsys, name) {
			continue
		}
		if err := l.readWithIncludes(name, nil); err != nil {
			return nil, err
		}
	}
	if len(l.files) == 0 {
		return nil, fmt.Errorf("%s.conf: %w", base, fs.ErrNotExist)
	}
	return l, nil
}

// readFiles reads the given files in order, each with its includes.
func readFiles(fsys fs.FS, names ...string) (*Layers, error) {
	l := &Layers{fsys: fsys, sections: map[string]*layeredSection{}}
	for _, name := range names {
		if err := l.readWithIncludes(name, nil); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func exists(fsys fs.FS, name string) bool {
	st, err := fs.Stat(fsys, name)
	return err == nil && !st.IsDir()
}

// globQuote escapes glob metacharacters in a literal path.
func globQuote(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// readWithIncludes reads name and, around it, the files its [INCLUDES]
// section names (relative to its directory), each followed by its .local
// companion when one exists. seen breaks include cycles as fail2ban does:
// a file already on the include path is skipped.
func (l *Layers) readWithIncludes(name string, seen []string) error {
	if len(seen) >= MaxIncludeDepth {
		return fmt.Errorf("%s: includes nested more than %d deep (%s)", name, MaxIncludeDepth, strings.Join(seen, " -> "))
	}
	f, err := l.parse(name)
	if err != nil {
		return err
	}
	var before, after []string
	if inc := f.section("INCLUDES"); inc != nil {
		before = includeList(name, inc.values["before"])
		after = includeList(name, inc.values["after"])
	}
	seen = append(seen, name)
	for _, b := range before {
		if err := l.readIncluded(b, seen); err != nil {
			return err
		}
	}
	l.merge(f)
	for _, a := range after {
		if err := l.readIncluded(a, seen); err != nil {
			return err
		}
	}
	return nil
}

func (l *Layers) readIncluded(name string, seen []string) error {
	local := strings.TrimSuffix(name, path.Ext(name)) + ".local"
	for _, n := range []string{name, local} {
		if slices.Contains(seen, n) || !exists(l.fsys, n) {
			continue // fail2ban skips missing includes too (paths-overrides.local)
		}
		if err := l.readWithIncludes(n, seen); err != nil {
			return err
		}
	}
	return nil
}

func includeList(from, value string) []string {
	var out []string
	for _, f := range strings.Split(value, "\n") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !path.IsAbs(f) {
			f = path.Join(path.Dir(from), f)
		} else {
			f = strings.TrimPrefix(path.Clean(f), "/")
		}
		out = append(out, f)
	}
	return out
}

func (l *Layers) parse(name string) (*iniFile, error) {
	st, err := fs.Stat(l.fsys, name)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes: larger than %d, not a fail2ban configuration file", name, st.Size(), MaxFileSize)
	}
	data, err := fs.ReadFile(l.fsys, name)
	if err != nil {
		return nil, err
	}
	return parseINI(name, data)
}

func (l *Layers) merge(f *iniFile) {
	l.files = append(l.files, f.path)
	for _, s := range f.sections {
		if s.name == "INCLUDES" {
			continue
		}
		ls, ok := l.sections[s.name]
		if !ok {
			ls = &layeredSection{values: map[string]string{}, known: map[string]string{}}
			l.sections[s.name] = ls
			l.order = append(l.order, s.name)
		}
		for _, k := range s.keys {
			if old, ok := ls.values[k]; ok {
				ls.known[k] = old
			}
			ls.values[k] = s.values[k]
		}
	}
}

// Files returns the files read, in the order they were merged.
func (l *Layers) Files() []string { return slices.Clone(l.files) }

// Sections returns the section names in order of first appearance,
// [DEFAULT] included.
func (l *Layers) Sections() []string { return slices.Clone(l.order) }

// OwnKeys returns the keys section sets itself, sorted.
func (l *Layers) OwnKeys(section string) []string {
	s, ok := l.sections[section]
	if !ok {
		return nil
	}
	keys := make([]string, 0, len(s.values))
	for k := range s.values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ErrNoOption is returned (wrapped) by Get for a key that neither the
// section nor [DEFAULT] sets.
var ErrNoOption = errors.New("not set")

// raw finds key in section, then in [DEFAULT]; vars, when given, take
// precedence over both (fail2ban's jail arguments to a filter).
func (l *Layers) raw(section, key string, vars map[string]string) (string, bool) {
	if v, ok := vars[key]; ok {
		return v, true
	}
	if key == "__name__" {
		return section, true
	}
	for _, sec := range []string{section, DefaultSection} {
		if s, ok := l.sections[sec]; ok {
			if v, ok := s.values[key]; ok {
				return v, true
			}
		}
	}
	return "", false
}

// Get returns key of section, interpolated. vars may be nil.
func (l *Layers) Get(section, key string, vars map[string]string) (string, error) {
	v, ok := l.raw(section, key, vars)
	return l.expand(section, section, key, v, ok, vars)
}

// GetRef returns a qualified reference such as "l_catalina/failregex",
// "default/key" or "known/key" as seen from section, interpolated.
func (l *Layers) GetRef(section, ref string, vars map[string]string) (string, error) {
	v, sec, ok := l.resolve(section, strings.ToLower(ref), vars)
	return l.expand(section, sec, ref, v, ok, vars)
}

// expand interpolates the raw value v of name, found (ok) in section
// sec; errors are labelled with the section asked for.
func (l *Layers) expand(asked, sec, name, v string, ok bool, vars map[string]string) (string, error) {
	if !ok {
		return "", fmt.Errorf("[%s] %s: %w", asked, name, ErrNoOption)
	}
	out, err := l.interpolate(sec, v, vars, []string{name}, map[string]string{})
	if err != nil {
		return "", fmt.Errorf("[%s] %s: %w", asked, name, err)
	}
	return out, nil
}

// interpolate expands %(ref)s in v within section. chain holds the keys
// being expanded, outermost first, so a loop is reported with its path.
//
// memo keeps each reference's expansion for the duration of one Get, so a
// value that refers to the same large value many times, at many levels,
// costs its size once per level and not exponentially.
func (l *Layers) interpolate(section, v string, vars map[string]string, chain []string, memo map[string]string) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	if len(chain) > MaxInterpolationDepth {
		return "", fmt.Errorf("interpolation deeper than %d (a loop?): %s", MaxInterpolationDepth, strings.Join(chain, " -> "))
	}
	var b strings.Builder
	for rest := v; rest != ""; {
		i := strings.IndexByte(rest, '%')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		rest = rest[i:]
		switch {
		case strings.HasPrefix(rest, "%%"):
			b.WriteByte('%')
			rest = rest[2:]
			continue
		case !strings.HasPrefix(rest, "%("):
			return "", fmt.Errorf("'%%' must be followed by '%%' or '(': %q", clip(rest))
		}
		end := strings.Index(rest, ")s")
		if end < 0 {
			return "", fmt.Errorf("unterminated reference %q: want %%(name)s", clip(rest))
		}
		ref := strings.ToLower(rest[2:end])
		rest = rest[end+2:]
		if slices.Contains(chain, ref) && !strings.HasPrefix(ref, "known/") {
			return "", fmt.Errorf("interpolation loop: %s", strings.Join(append(chain, ref), " -> "))
		}
		memoKey := section + "\x00" + ref
		expanded, done := memo[memoKey]
		if !done {
			rv, rsec, ok := l.resolve(section, ref, vars)
			if !ok {
				return "", fmt.Errorf("%%(%s)s: no such key in [%s] or [DEFAULT]", ref, section)
			}
			var err error
			if expanded, err = l.interpolate(rsec, rv, vars, append(slices.Clip(chain), ref), memo); err != nil {
				return "", err
			}
			memo[memoKey] = expanded
		}
		b.WriteString(expanded)
		if b.Len() > MaxValueSize {
			return "", fmt.Errorf("interpolated value longer than %d bytes (%s)", MaxValueSize, strings.Join(chain, " -> "))
		}
	}
	return b.String(), nil
}

// resolve finds a reference's raw value and the section it is expanded in:
// "key", "default/key", "known/key" (the value before the latest override,
// else [DEFAULT]'s), or "section/key".
func (l *Layers) resolve(section, ref string, vars map[string]string) (string, string, bool) {
	sec, key, qualified := strings.Cut(ref, "/")
	if !qualified {
		v, ok := l.raw(section, ref, vars)
		return v, section, ok
	}
	switch sec {
	case "default":
		if s, ok := l.sections[DefaultSection]; ok {
			v, ok := s.values[key]
			return v, DefaultSection, ok
		}
		return "", "", false
	case "known":
		if s, ok := l.sections[section]; ok {
			if v, ok := s.known[key]; ok {
				return v, section, true
			}
		}
		if s, ok := l.sections[DefaultSection]; ok {
			v, ok := s.values[key]
			return v, section, ok
		}
		return "", "", false
	}
	for name, s := range l.sections {
		if strings.EqualFold(name, sec) {
			v, ok := s.values[key]
			if !ok {
				v, ok = l.raw(name, key, nil)
			}
			return v, name, ok
		}
	}
	return "", "", false
}
