package main

import (
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	in := `# HELP sysban_messages_received_total x
# TYPE sysban_messages_received_total counter
sysban_messages_received_total{listener="udp:127.0.0.1:5514"} 12
sysban_messages_received_total{listener="tcp:127.0.0.1:5514"} 3e+06
sysban_failures_total{jail="sshd"} 5
sysban_failures_total{jail="dovecot"} 2
sysban_queue_depth 0
garbage line
`
	s, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, sub string
		want      float64
	}{
		{"sysban_messages_received_total", "udp:", 12},
		{"sysban_messages_received_total", "tcp:", 3e6},
		{"sysban_messages_received_total", "", 3e6 + 12},
		{"sysban_failures_total", "", 7},
		{"sysban_failures_total", "sshd", 5},
		{"sysban_queue_depth", "", 0},
		{"missing", "", 0},
	} {
		if got := s.sum(c.name, c.sub); got != c.want {
			t.Errorf("sum(%s, %q) = %v, want %v", c.name, c.sub, got, c.want)
		}
	}
}

func TestFrame(t *testing.T) {
	for _, c := range []struct {
		octet bool
		want  string
	}{
		{false, "<38>x: hi\n"},
		{true, "9 <38>x: hi"},
	} {
		if got := string(frame(nil, []byte("<38>x: hi"), c.octet)); got != c.want {
			t.Errorf("frame(octet=%v) = %q, want %q", c.octet, got, c.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	var sb strings.Builder
	if _, err := parseFlags([]string{"-sections", "match,bogus"}, &sb); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown section: err = %v", err)
	}
	o, err := parseFlags([]string{"-sections", "tcp", "-rates", "1000,2000"}, &sb)
	if err != nil || len(o.sections) != 1 || len(o.rates) != 2 || o.rates[1] != 2000 {
		t.Errorf("parseFlags = %+v, %v", o, err)
	}
}
