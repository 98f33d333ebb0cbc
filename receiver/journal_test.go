package receiver

import (
	"testing"
	"time"

	"github.com/sysban/sysban"
)

func TestUnwrapJournal(t *testing.T) {
	now := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	tests := []struct {
		name, text                     string
		ok                             bool
		host, app, pid, want, stampUTC string
	}{
		{"short", "Dec 06 20:59:59 web1 sshd[123]: Failed password for root from 192.0.2.7 port 22 ssh2",
			true, "web1", "sshd", "123", "Failed password for root from 192.0.2.7 port 22 ssh2", "2026-12-06T20:59:59Z"},
		{"short-precise", "Dec 06 20:59:59.123456 web1 sshd-session[123]: Invalid user x from 192.0.2.7 port 1",
			true, "web1", "sshd-session", "123", "Invalid user x from 192.0.2.7 port 1", "2026-12-06T20:59:59.123456Z"},
		{"short-iso", "2026-12-06T21:59:59+0100 web1 sshd[123]: x",
			true, "web1", "sshd", "123", "x", "2026-12-06T20:59:59Z"},
		{"short-iso-precise", "2026-12-06T20:59:59.5+00:00 web1 dovecot[9]: x",
			true, "web1", "dovecot", "9", "x", "2026-12-06T20:59:59.5Z"},
		{"kernel, no pid", "Dec 06 20:59:59 web1 kernel: sysban: IN=eth0 SRC=192.0.2.7",
			true, "web1", "kernel", "", "sysban: IN=eth0 SRC=192.0.2.7", "2026-12-06T20:59:59Z"},
		{"_COMM of an entry without identifier", "Dec 06 20:59:59 web1 python3[77]: login failed for bob from 192.0.2.7",
			true, "web1", "python3", "77", "login failed for bob from 192.0.2.7", "2026-12-06T20:59:59Z"},
		{"no host", "Dec 06 20:59:59 sshd[123]: x", false, "", "", "", "", ""},
		{"no tag", "Dec 06 20:59:59 web1 just words", false, "", "", "", "", ""},
		{"ordinary text", "Failed password for root from 192.0.2.7 port 22 ssh2", false, "", "", "", "", ""},
		{"mysqld's own stamp is no journal line", "2026-03-01 13:00:00 12 [Warning] Access denied for user 'x'@'192.0.2.7'", false, "", "", "", "", ""},
		{"time only", "Dec 06 20:59:59", false, "", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sysban.Message{Hostname: "fwd", AppName: "journal", Text: tt.text}
			if got := unwrapJournal(&m, now); got != tt.ok {
				t.Fatalf("unwrapJournal = %v, want %v (%+v)", got, tt.ok, m)
			}
			if !tt.ok {
				if m.Hostname != "fwd" || m.AppName != "journal" || m.Text != tt.text {
					t.Errorf("not a journal line, but m changed: %+v", m)
				}
				return
			}
			if m.Hostname != tt.host || m.AppName != tt.app || m.ProcID != tt.pid || m.Text != tt.want {
				t.Errorf("got host %q app %q pid %q text %q, want %q %q %q %q", m.Hostname, m.AppName, m.ProcID, m.Text, tt.host, tt.app, tt.pid, tt.want)
			}
			if got := m.Timestamp.UTC().Format(time.RFC3339Nano); got != tt.stampUTC {
				t.Errorf("time %s, want %s", got, tt.stampUTC)
			}
		})
	}
}

// TestJournalPrograms: through a listener, logger's messages of a listed
// program become the forwarded lines' own; other programs are left alone,
// and a forwarded line claiming a reserved program is dropped.
func TestJournalPrograms(t *testing.T) {
	rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}},
		Options{JournalPrograms: []string{"journal"}, ReservedPrograms: []string{"sysban-nflog"}})
	c := dial(t, "tcp", rr.r.Addrs()[0])
	lines := "<13>Dec  6 21:00:00 fwd journal: Dec 06 20:59:59 web1 sshd[123]: Failed password for root from 192.0.2.7 port 22 ssh2\n" +
		"<13>Dec  6 21:00:00 fwd journal: Dec 06 20:59:59 web1 sysban-nflog: probe from 192.0.2.9 to tcp port 23\n" +
		"<13>1 2026-12-06T21:00:00.1+00:00 fwd journal - - - 2026-12-06T20:59:59+0000 web2 dovecot[9]: x\n" +
		"<13>Dec  6 21:00:00 fwd root: Dec 06 20:59:59 web1 sshd[123]: not unwrapped\n"
	if _, err := c.Write([]byte(lines)); err != nil {
		t.Fatal(err)
	}
	got := rr.c.waitN(t, 3)
	want := []struct{ host, app, text string }{
		{"web1", "sshd", "Failed password for root from 192.0.2.7 port 22 ssh2"},
		{"web2", "dovecot", "x"},
		{"fwd", "root", "Dec 06 20:59:59 web1 sshd[123]: not unwrapped"},
	}
	for i, w := range want {
		if m := got[i]; m.Hostname != w.host || m.AppName != w.app || m.Text != w.text {
			t.Errorf("message %d: %q %q %q, want %q %q %q", i, m.Hostname, m.AppName, m.Text, w.host, w.app, w.text)
		}
	}
	waitFor(t, "the reserved program dropped", func() bool { return rr.stats(0).Dropped[ReasonReservedProgram] == 1 })
}

// FuzzUnwrapJournal: any text either leaves the message alone or gives it
// a program and host cut from the text, never panicking.
func FuzzUnwrapJournal(f *testing.F) {
	for _, s := range []string{
		"Dec 06 20:59:59 web1 sshd[123]: x",
		"2026-12-06T20:59:59+0000 web1 sshd[123]: x",
		"Dec 06 20:59:59.123456 h k: ",
		"Dec 06 20:59:59 ",
		"",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, text string) {
		m := sysban.Message{Hostname: "fwd", AppName: "journal", Text: text}
		if !unwrapJournal(&m, now) {
			if m.Hostname != "fwd" || m.AppName != "journal" || m.Text != text {
				t.Fatalf("no journal line, but m changed: %+v", m)
			}
			return
		}
		if m.Hostname == "" || m.AppName == "" || len(m.Text) >= len(text) {
			t.Fatalf("%q: unwrapped to %+v", text, m)
		}
	})
}
