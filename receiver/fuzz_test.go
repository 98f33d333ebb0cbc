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

// FuzzOriginSD: the forwarder's [sysban@32473 ...] element, parsed from a
// whole RFC 5424 line as the receiver does. Whatever the bytes, an origin
// is vouched for only with a uid the kernel could have given, and its
// other ids are real ids or -1.
func FuzzOriginSD(f *testing.F) {
	f.Add([]byte(`<13>1 - h sshd - - [sysban@32473 uid="0" gid="0" pid="812" exe="/usr/sbin/sshd" comm="sshd" unit="ssh.service"] Failed password`))
	f.Add([]byte(`<13>1 - h sshd - - [sysban@32473 uid="65534" gid="" pid="" exe="/tmp/a\]b\"c" comm="" unit=""] x`))
	f.Add([]byte(`<13>1 - h sshd - - [sysban@32473 uid="4294967295"][sysban@32473 uid="0"] x`))
	f.Add([]byte(`<13>1 - h sshd - - [sysban@32473 uid="0" exe="/tmp/a]b" comm="x] uid=\"0\""] x`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m sysban.Message
		_ = Parse(b, testNow, &m)
		o := OriginFromSD(m.StructuredData[OriginSDID])
		if !o.Known() {
			if o.UID != -1 || o.GID != -1 || o.PID != -1 || o.Exe != "" {
				t.Fatalf("unvouched origin carries fields: %+v", o)
			}
			return
		}
		for _, id := range []int64{o.UID, o.GID, o.PID} {
			if id < -1 || id >= 1<<32-1 {
				t.Fatalf("id out of range: %+v", o)
			}
		}
		if o.UID < 0 || o.Vouched != sysban.VouchForwarder {
			t.Fatalf("vouched without a uid: %+v", o)
		}
	})
}
