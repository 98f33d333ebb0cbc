package main

import (
	"strconv"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/jsonstr"
	"github.com/sysban/sysban/pipeline"
)

// lineRecord is one object of `sysban test --json`: one per input line, in
// input order, each on a line of its own. A field that does not apply to
// the line is null, never absent (except matches). The json tags are the
// schema: appendRecord writes the fields in this order, and a test checks
// that it writes what encoding/json would.
type lineRecord struct {
	Line uint64 `json:"line"` // 1-based number of the input line
	// Matched: the line is a failure (including the line that completed a
	// multi-line one).
	Matched bool `json:"matched"`
	// Host is the failure's <HOST> (an address or a hostname); null
	// unless matched.
	Host *string `json:"host"`
	// Filter, Pattern and Regex are the match that decided the line (see
	// judge): the filter, the index of the pattern in the order `sysban
	// test` lists them from 0 (pipeline.Match.Pattern), and the pattern as
	// written. Null for a missed line.
	Filter  *string `json:"filter"`
	Pattern *int    `json:"pattern"`
	Regex   *string `json:"regex"`
	// Ignored: an ignoreregex vetoed the match. Pending: the line opened a
	// multi-line failure. Correlated: the line is a failure that completed
	// one.
	Ignored    bool `json:"ignored"`
	Pending    bool `json:"pending"`
	Correlated bool `json:"correlated"`
	// SameAttempt: a failure line of an attempt already counted (it counts
	// nothing; Host is its address). Failures is how many failures the
	// line counts: 0 unless matched, else 1 or an end line's number of
	// attempts nothing counted yet.
	SameAttempt bool `json:"same_attempt"`
	Failures    int  `json:"failures"`
	// Timestamp is the line's own time in RFC 3339 (with its fraction and
	// zone as far as the line gave them); null for a line without one.
	Timestamp *time.Time `json:"timestamp"`
	// The syslog header's fields, null when the line lacks them; App is
	// --program (or the filter's program) for a line that names none.
	Hostname *string `json:"hostname"`
	App      *string `json:"app"`
	ProcID   *string `json:"procid"`
	MsgID    *string `json:"msgid"`
	Message  string  `json:"message"` // the text the filters read
	// Matches lists every filter's match when several matched the line
	// (all with several filters reading one program); absent otherwise.
	Matches []matchRecord `json:"matches,omitempty"`
}

// matchRecord is one filter's match on a line that several matched.
type matchRecord struct {
	Filter     string  `json:"filter"`
	Pattern    int     `json:"pattern"`
	Host       *string `json:"host"` // null when the match carried none (a pending open)
	Ignored    bool    `json:"ignored"`
	Pending    bool    `json:"pending"`
	Correlated bool    `json:"correlated"`
}

// The objects are written by hand (appendRecord), not with encoding/json:
// over the 1M-line log of scripts/bench, `sysban test --json all` used
// 3.24 s of CPU with encoding/json and 2.17 s by hand (median of 7 paired
// runs), half as much again for the same bytes. TestRecordEncoding holds
// the two to the same output.

// recordWriter builds the --json object of each line and appends it to
// buf.
type recordWriter struct {
	buf     []byte
	matches []matchRecord // reused from line to line
}

// record returns the object of line n: message m, every filter's match,
// and the verdict judged from them. Its pointers point into m and matches.
func (rw *recordWriter) record(n uint64, m *sysban.Message, matches []pipeline.Match, v verdict) lineRecord {
	l := lineRecord{
		Line:        n,
		Matched:     v.kind == lineMatched,
		Ignored:     v.kind == lineIgnored,
		Pending:     v.kind == linePending,
		SameAttempt: v.kind == lineSame,
		Hostname:    nullable(&m.Hostname),
		App:         nullable(&m.AppName),
		ProcID:      nullable(&m.ProcID),
		MsgID:       nullable(&m.MsgID),
		Message:     m.Text,
	}
	if v.match != nil {
		l.Filter, l.Pattern, l.Regex = &v.match.Filter, &v.match.Pattern, &v.match.Regex
		if l.Matched || v.kind == lineSame {
			l.Host = nullable(&v.match.Host)
		}
		if l.Matched {
			l.Correlated = v.match.Correlated
			l.Failures = max(v.match.Count, 1)
		}
	}
	if !m.Timestamp.IsZero() {
		l.Timestamp = &m.Timestamp
	}
	if len(matches) > 1 {
		rw.matches = rw.matches[:0]
		for i := range matches {
			mt := &matches[i]
			rw.matches = append(rw.matches, matchRecord{Filter: mt.Filter, Pattern: mt.Pattern, Host: nullable(&mt.Host),
				Ignored: mt.Ignored, Pending: mt.Pending, Correlated: mt.Correlated})
		}
		l.Matches = rw.matches
	}
	return l
}

// line returns the JSON of line n and a newline; valid until the next call.
func (rw *recordWriter) line(n uint64, m *sysban.Message, matches []pipeline.Match, v verdict) []byte {
	l := rw.record(n, m, matches, v)
	rw.buf = append(appendRecord(rw.buf[:0], &l), '\n')
	return rw.buf
}

// nullable is s, or nil (null) when *s is empty.
func nullable(s *string) *string {
	if *s == "" {
		return nil
	}
	return s
}

// appendRecord appends l as encoding/json would marshal it (with
// SetEscapeHTML(false)).
func appendRecord(b []byte, l *lineRecord) []byte {
	b = append(b, `{"line":`...)
	b = strconv.AppendUint(b, l.Line, 10)
	b = strconv.AppendBool(append(b, `,"matched":`...), l.Matched)
	b = appendNullable(append(b, `,"host":`...), l.Host)
	b = appendNullable(append(b, `,"filter":`...), l.Filter)
	b = append(b, `,"pattern":`...)
	if l.Pattern != nil {
		b = strconv.AppendInt(b, int64(*l.Pattern), 10)
	} else {
		b = append(b, "null"...)
	}
	b = appendNullable(append(b, `,"regex":`...), l.Regex)
	b = strconv.AppendBool(append(b, `,"ignored":`...), l.Ignored)
	b = strconv.AppendBool(append(b, `,"pending":`...), l.Pending)
	b = strconv.AppendBool(append(b, `,"correlated":`...), l.Correlated)
	b = strconv.AppendBool(append(b, `,"same_attempt":`...), l.SameAttempt)
	b = strconv.AppendInt(append(b, `,"failures":`...), int64(l.Failures), 10)
	b = append(b, `,"timestamp":`...)
	if l.Timestamp != nil {
		b = append(b, '"')
		b = l.Timestamp.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	b = appendNullable(append(b, `,"hostname":`...), l.Hostname)
	b = appendNullable(append(b, `,"app":`...), l.App)
	b = appendNullable(append(b, `,"procid":`...), l.ProcID)
	b = appendNullable(append(b, `,"msgid":`...), l.MsgID)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, l.Message)
	if len(l.Matches) > 0 {
		b = append(b, `,"matches":[`...)
		for i := range l.Matches {
			mt := &l.Matches[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"filter":`...)
			b = appendJSONString(b, mt.Filter)
			b = append(b, `,"pattern":`...)
			b = strconv.AppendInt(b, int64(mt.Pattern), 10)
			b = appendNullable(append(b, `,"host":`...), mt.Host)
			b = strconv.AppendBool(append(b, `,"ignored":`...), mt.Ignored)
			b = strconv.AppendBool(append(b, `,"pending":`...), mt.Pending)
			b = strconv.AppendBool(append(b, `,"correlated":`...), mt.Correlated)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendNullable appends *value as a JSON string, null for nil.
func appendNullable(b []byte, value *string) []byte {
	if value == nil {
		return append(b, "null"...)
	}
	return appendJSONString(b, *value)
}

// appendJSONString appends s as a JSON string, as encoding/json does with
// SetEscapeHTML(false): the regexes in the output hold <HOST>, and people
// read it.
func appendJSONString(b []byte, s string) []byte { return jsonstr.Append(b, s, false) }
