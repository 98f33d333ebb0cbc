package main

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
)

// appendJSONLine appends the --json object of one line. It is written by
// hand rather than with encoding/json to avoid reflection and allocations
// per line; the test decodes it with encoding/json.
func appendJSONLine(b []byte, n uint64, m *sysban.Message, matches []pipeline.Match, v verdict) []byte {
	b = append(b, `{"line":`...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, `,"matched":`...)
	b = strconv.AppendBool(b, v.kind == lineMatched)
	b = append(b, `,"host":`...)
	if (v.kind == lineMatched || v.kind == lineSame) && v.match.Host != "" {
		b = appendJSONString(b, v.match.Host)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"filter":`...)
	if v.match != nil {
		b = appendJSONString(b, v.match.Filter)
		b = append(b, `,"pattern":`...)
		b = strconv.AppendInt(b, int64(v.match.Pattern), 10)
		b = append(b, `,"regex":`...)
		b = appendJSONString(b, v.match.Regex)
	} else {
		b = append(b, `null,"pattern":null,"regex":null`...)
	}
	b = append(b, `,"ignored":`...)
	b = strconv.AppendBool(b, v.kind == lineIgnored)
	b = append(b, `,"pending":`...)
	b = strconv.AppendBool(b, v.kind == linePending)
	b = append(b, `,"correlated":`...)
	b = strconv.AppendBool(b, v.kind == lineMatched && v.match.Correlated)
	b = append(b, `,"same_attempt":`...)
	b = strconv.AppendBool(b, v.kind == lineSame)
	b = append(b, `,"failures":`...)
	failures := 0
	if v.kind == lineMatched {
		failures = max(v.match.Count, 1)
	}
	b = strconv.AppendInt(b, int64(failures), 10)
	b = append(b, `,"timestamp":`...)
	if m.Timestamp.IsZero() {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = m.Timestamp.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = appendJSONField(b, "hostname", m.Hostname)
	b = appendJSONField(b, "app", m.AppName)
	b = appendJSONField(b, "procid", m.ProcID)
	b = appendJSONField(b, "msgid", m.MsgID)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, m.Text)
	if len(matches) > 1 {
		// Several filters read this program and matched: list them all.
		b = append(b, `,"matches":[`...)
		for i := range matches {
			mt := &matches[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"filter":`...)
			b = appendJSONString(b, mt.Filter)
			b = append(b, `,"pattern":`...)
			b = strconv.AppendInt(b, int64(mt.Pattern), 10)
			b = append(b, `,"host":`...)
			if mt.Host != "" {
				b = appendJSONString(b, mt.Host)
			} else {
				b = append(b, "null"...)
			}
			b = append(b, `,"ignored":`...)
			b = strconv.AppendBool(b, mt.Ignored)
			b = append(b, `,"pending":`...)
			b = strconv.AppendBool(b, mt.Pending)
			b = append(b, `,"correlated":`...)
			b = strconv.AppendBool(b, mt.Correlated)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendJSONField appends ,"key":value with null for an empty value.
func appendJSONField(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	if value == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, value)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD
// (as encoding/json does); control bytes, quotes and backslashes are
// escaped. Unlike encoding/json it leaves <, > and & alone: the regexes in
// the output hold <HOST>, and people read this output.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript parsers.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
