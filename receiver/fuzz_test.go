package receiver

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/sysban/sysban"
)

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte("<13>Feb 29 00:00:00 h a[1]: leap"))
	f.Add([]byte("<0>1 - - - - - [a@1 b=\"\\]\"] x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		var m sysban.Message
		err := Parse(b, testNow, &m)
		if !bytes.Equal(in, b) {
			t.Fatal("Parse modified its input")
		}
		if m.Facility > 23 || m.Severity > 7 {
			t.Fatalf("facility/severity out of range: %d/%d", m.Facility, m.Severity)
		}
		trimmed := trimTrailing(in)
		if _, n, ok := parsePRI(trimmed); !ok {
			if err == nil || m.Text != string(trimmed) {
				t.Fatalf("no PRI: err=%v text=%q, want error and raw text", err, m.Text)
			}
		} else if len(trimmed) > n && m.Text == "" && m.AppName == "" && m.Hostname == "" && m.MsgID == "" && m.ProcID == "" && m.StructuredData == nil && m.Timestamp.IsZero() {
			t.Fatalf("everything after the PRI was lost: %q", in)
		}
	})
}

func FuzzFramer(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.in+"\n"), uint8(3))
		f.Add([]byte("9 "+tc.in), uint8(1))
	}
	f.Add([]byte("5 <13>a<14>b\n7 <15>c d<16>e\x00junk<13>x"), uint8(2))
	f.Add([]byte("99999999999 <13>a\n"), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		const max = 64
		whole, _ := frames(t, string(b), 0, max)
		split, _ := frames(t, string(b), int(chunk%16)+1, max)
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("framing depends on read boundaries:\n whole %q\n split %q", whole, split)
		}
		for _, fr := range whole {
			if len(fr) > max {
				t.Fatalf("frame of %d bytes exceeds max %d", len(fr), max)
			}
			if len(fr) == 0 {
				continue
			}
		}
	})
}
