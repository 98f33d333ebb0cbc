package fleet

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendValue appends v encoded exactly as encoding/json encodes it (the
// test holds them byte for byte). A decider in a storm publishes thousands
// of values a second; encoding/json's reflection was the largest part of
// its CPU on the publishing side. Signatures are still computed over
// encoding/json's text (signedText), which this need not change.
func appendValue(b []byte, v *Value) ([]byte, error) {
	var err error
	b = append(b, `{"start":`...)
	if b, err = appendTime(b, v.Start); err != nil {
		return nil, err
	}
	if !v.Expiry.IsZero() {
		b = append(b, `,"expiry":`...)
		if b, err = appendTime(b, v.Expiry); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"node":`...)
	b = appendString(b, v.Node)
	if v.Origin != "" {
		b = append(b, `,"origin":`...)
		b = appendString(b, v.Origin)
	}
	if v.Addr.IsValid() {
		b = append(b, `,"addr":`...)
		b = appendString(b, v.Addr.String())
	}
	if v.Manual {
		b = append(b, `,"manual":true`...)
	}
	b = append(b, `,"scope":`...)
	b = appendString(b, string(v.Scope))
	if v.Filter != "" {
		b = append(b, `,"filter":`...)
		b = appendString(b, v.Filter)
	}
	if v.Failures != 0 {
		b = append(b, `,"failures":`...)
		b = strconv.AppendInt(b, int64(v.Failures), 10)
	}
	if len(v.Lines) > 0 {
		b = append(b, `,"lines":[`...)
		for i, l := range v.Lines {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, l)
		}
		b = append(b, ']')
	}
	if v.Sig != "" {
		b = append(b, `,"sig":`...)
		b = appendString(b, v.Sig)
	}
	return append(b, '}'), nil
}

var errTimeRange = errors.New("fleet: time outside what JSON's RFC 3339 form can hold")

// appendTime writes t as time.Time.MarshalJSON does, refusing what it
// refuses: a year outside 0-9999 or a zone offset of a day or more.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, errTimeRange
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return nil, errTimeRange
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendString writes s as a JSON string the way encoding/json does by
// default: HTML characters and U+2028/U+2029 escaped, invalid UTF-8
// replaced by U+FFFD. Failure lines are an attacker's text.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
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
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
