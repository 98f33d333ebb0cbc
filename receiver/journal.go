package receiver

import (
	"time"

	"github.com/sysban/sysban"
)

// Journal lines forwarded by logger. A host without a syslog daemon that
// forwards (only journald) is often connected with
//
//	journalctl -f -o short-iso | logger --tcp -n sysban.example -P 514 -t journal
//
// so each message sysban receives is logger's, from program "journal" (or
// the user's name without -t), and its text is the line journalctl wrote:
//
//	2026-12-06T20:59:59+0000 web1 sshd[123]: Failed password for root from 192.0.2.7 port 22 ssh2
//
// -o short writes "Dec 06 20:59:59", -o short-precise adds microseconds,
// -o short-iso(-precise) an ISO time. The program is the journal entry's
// SYSLOG_IDENTIFIER, else its _COMM ("kernel" for kernel messages), with
// [_PID]. rsyslog's imjournal needs nothing of this: it sends each entry
// as a syslog message of its own program.
//
// The line's own program must not be taken from any message: whoever can
// make a message begin with text of their choosing (a script logging its
// input) could then speak for sshd. So it is only done for the programs
// listed in Options.JournalPrograms, which name the forwarding pipe.

// unwrapJournal replaces m's time, host, program, pid and text by those of
// the journalctl line that is m's text, and reports whether it did; m is
// unchanged when the text is not such a line (a time, a host, then
// "tag[pid]: " or "tag: ").
func unwrapJournal(m *sysban.Message, now time.Time) bool {
	b := []byte(m.Text)
	ts, n, ok := parseBSD(b, now)
	if !ok {
		ts, n, ok = readISO(b, isoRules{zoneless: now.Location(), looseOffset: true}, nil)
	}
	if !ok || n >= len(b) || b[n] != ' ' {
		return false
	}
	var inner sysban.Message
	if afterStamp(lineSource{b: b}, b[n:], ts, &inner) != nil || inner.Hostname == "" || inner.AppName == "" {
		return false
	}
	m.Timestamp = inner.Timestamp
	m.Hostname, m.AppName, m.ProcID, m.Text = inner.Hostname, inner.AppName, inner.ProcID, inner.Text
	return true
}
