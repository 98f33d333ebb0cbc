package fleet

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sysban/sysban/jsonstr"
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

// appendString writes s as encoding/json does by default, HTML escaped.
// Failure lines are an attacker's text.
func appendString(b []byte, s string) []byte { return jsonstr.Append(b, s, true) }

// decodeValue reads a bucket value as json.Unmarshal would. The form
// appendValue writes (its fields in its order, no spaces, strings without
// escapes) is read by hand, a storm's thousands a second on every
// enforcer; anything else, valid or not, goes to encoding/json, which
// decides. The fuzz target holds the two to the same result.
func decodeValue(data []byte, v *Value) error {
	if decodeValueFast(data, v) {
		return nil
	}
	*v = Value{}
	return json.Unmarshal(data, v)
}

// valueScan walks a value in appendValue's form.
type valueScan struct {
	b []byte
	i int
}

// field consumes name (with its punctuation) if it comes next.
func (s *valueScan) field(name string) bool {
	if len(s.b)-s.i >= len(name) && string(s.b[s.i:s.i+len(name)]) == name {
		s.i += len(name)
		return true
	}
	return false
}

// quoted returns the next string with its quotes; ok is false for a string
// with escapes, control bytes or invalid UTF-8 (encoding/json's to read).
func (s *valueScan) quoted() (raw []byte, ok bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	ascii := true
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			raw = s.b[s.i : j+1]
			if !ascii && !utf8.Valid(raw) {
				return nil, false
			}
			s.i = j + 1
			return raw, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (s *valueScan) str() (string, bool) {
	raw, ok := s.quoted()
	if !ok {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

func (s *valueScan) time(t *time.Time) bool {
	raw, ok := s.quoted()
	return ok && t.UnmarshalJSON(raw) == nil
}

// decodeValueFast reads data into v if it is in appendValue's form.
func decodeValueFast(data []byte, v *Value) bool {
	s := valueScan{b: data}
	var ok bool
	if !s.field(`{"start":`) || !s.time(&v.Start) {
		return false
	}
	if s.field(`,"expiry":`) && !s.time(&v.Expiry) {
		return false
	}
	if !s.field(`,"node":`) {
		return false
	}
	if v.Node, ok = s.str(); !ok {
		return false
	}
	if s.field(`,"origin":`) {
		if v.Origin, ok = s.str(); !ok {
			return false
		}
	}
	if s.field(`,"addr":`) {
		raw, ok := s.quoted()
		if !ok || v.Addr.UnmarshalText(raw[1:len(raw)-1]) != nil {
			return false
		}
	}
	v.Manual = s.field(`,"manual":true`)
	if !s.field(`,"scope":`) {
		return false
	}
	scope, ok := s.str()
	if !ok {
		return false
	}
	v.Scope = Scope(scope)
	if s.field(`,"filter":`) {
		if v.Filter, ok = s.str(); !ok {
			return false
		}
	}
	if s.field(`,"failures":`) {
		j := s.i
		if j < len(s.b) && s.b[j] == '-' {
			j++
		}
		if j >= len(s.b) || s.b[j] < '1' || s.b[j] > '9' {
			return false // zero is never written; JSON allows no leading zeros
		}
		for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
			j++
		}
		n, err := strconv.ParseInt(string(s.b[s.i:j]), 10, strconv.IntSize)
		if err != nil {
			return false
		}
		v.Failures, s.i = int(n), j
	}
	if s.field(`,"lines":[`) {
		for {
			l, ok := s.str()
			if !ok {
				return false
			}
			v.Lines = append(v.Lines, l)
			if s.field(`]`) {
				break
			}
			if !s.field(`,`) {
				return false
			}
		}
	}
	if s.field(`,"sig":`) {
		if v.Sig, ok = s.str(); !ok {
			return false
		}
	}
	return s.field(`}`) && s.i == len(s.b)
}
