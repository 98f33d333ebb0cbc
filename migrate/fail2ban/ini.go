package fail2ban

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Bounds on what is read. A real fail2ban directory is a few hundred
// kilobytes in all; the largest stock value (a bad-bots list) is under
// 10 KiB.
const (
	MaxFileSize           = 4 << 20 // bytes of one file
	MaxValueSize          = 1 << 20 // bytes of one value, raw or interpolated
	MaxInterpolationDepth = 10      // nested %(...)s references, as Python's configparser
	MaxIncludeDepth       = 16      // nested [INCLUDES] files
	maxSections           = 4096    // sections in one file
)

// DefaultSection is the section every other section falls back to.
const DefaultSection = "DEFAULT"

// iniFile is one parsed file: its sections in order, each with its keys in
// order. [DEFAULT] is a section like the others here; layering gives it its
// meaning.
type iniFile struct {
	path     string
	sections []*iniSection
}

type iniSection struct {
	name   string
	keys   []string
	values map[string]string
	lines  map[string]int // line of each key, for reports
}

func (f *iniFile) section(name string) *iniSection {
	for _, s := range f.sections {
		if s.name == name {
			return s
		}
	}
	return nil
}

// parseINI reads one file with the rules of Python's configparser as
// fail2ban sets it up (see doc.go). Errors name the file and line.
func parseINI(path string, data []byte) (*iniFile, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes: larger than %d, not a fail2ban configuration file", path, len(data), MaxFileSize)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%s: not UTF-8 text", path)
	}
	f := &iniFile{path: path}
	var (
		cur       *iniSection
		key       string // key being continued, "" after a section header
		keyIndent int
		value     []string
		size      int
	)
	flush := func() {
		if cur != nil && key != "" {
			// Trailing empty lines belong to no value.
			for len(value) > 1 && value[len(value)-1] == "" {
				value = value[:len(value)-1]
			}
			cur.values[key] = strings.Join(value, "\n")
		}
		key, value, size = "", nil, 0
	}
	lines := bytes.Split(data, []byte("\n"))
	for i, raw := range lines {
		lineNo := i + 1
		line := strings.TrimRight(string(raw), "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			// An empty line inside a value is kept if the value goes on.
			if key != "" {
				value = append(value, "")
			}
			continue
		}
		if trimmed[0] == '#' || trimmed[0] == ';' {
			continue
		}
		trimmed = stripInlineComment(trimmed)
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		if key != "" && indent > keyIndent {
			size += len(trimmed) + 1
			if size > MaxValueSize {
				return nil, fmt.Errorf("%s:%d: [%s] %s: value longer than %d bytes", path, lineNo, cur.name, key, MaxValueSize)
			}
			value = append(value, trimmed)
			continue
		}
		if trimmed[0] == '[' && strings.HasSuffix(trimmed, "]") {
			flush()
			name := strings.TrimSpace(trimmed[1 : len(trimmed)-1])
			if name == "" {
				return nil, fmt.Errorf("%s:%d: empty section name", path, lineNo)
			}
			if f.section(name) != nil {
				return nil, fmt.Errorf("%s:%d: section [%s] appears twice in this file", path, lineNo, name)
			}
			if len(f.sections) >= maxSections {
				return nil, fmt.Errorf("%s:%d: more than %d sections", path, lineNo, maxSections)
			}
			cur = &iniSection{name: name, values: map[string]string{}, lines: map[string]int{}}
			f.sections = append(f.sections, cur)
			continue
		}
		flush()
		i := strings.IndexAny(trimmed, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("%s:%d: %q: want \"key = value\", a [section] or a comment", path, lineNo, clip(trimmed))
		}
		if cur == nil {
			return nil, fmt.Errorf("%s:%d: %q before any [section]", path, lineNo, clip(trimmed))
		}
		k := strings.ToLower(strings.TrimSpace(trimmed[:i]))
		if _, dup := cur.values[k]; dup {
			return nil, fmt.Errorf("%s:%d: [%s] %s set twice in this file", path, lineNo, cur.name, k)
		}
		v := strings.TrimSpace(trimmed[i+1:])
		if len(v) > MaxValueSize {
			return nil, fmt.Errorf("%s:%d: [%s] %s: value longer than %d bytes", path, lineNo, cur.name, k, MaxValueSize)
		}
		cur.keys = append(cur.keys, k)
		cur.lines[k] = lineNo
		key, keyIndent, value, size = k, indent, []string{v}, len(v)
	}
	flush()
	return f, nil
}

// stripInlineComment cuts a ';' comment that follows white space. fail2ban
// allows only ';' inline: '#' is part of the value (regexes use it).
func stripInlineComment(s string) string {
	for i := 1; i < len(s); i++ {
		if s[i] == ';' && (s[i-1] == ' ' || s[i-1] == '\t') {
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
