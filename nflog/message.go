package nflog

import (
	"fmt"
	"time"

	"github.com/sysban/sysban"
)

// AppName is the program of the messages sysban writes for probes; the
// portprobe filter reads it.
const AppName = "sysban-nflog"

// Syslog facility and severity of probe messages: security/authorization
// (4), notice (5).
const (
	probeFacility = 4
	probeSeverity = 5
)

// ProbeMessage writes a probe as the message the pipeline reads, e.g.
// "probe from 203.0.113.9 to tcp port 23". sysban writes every byte of it
// from parsed fields (an address, a protocol name, a number), so the
// filter's anchored pattern can never be fooled by attacker text. ok is
// false when p is no probe (not a new TCP or UDP connection).
func ProbeMessage(p Packet, group uint16, at time.Time) (m *sysban.Message, ok bool) {
	if !p.NewConnection() || !p.Src.IsValid() {
		return nil, false
	}
	return &sysban.Message{
		Received:  at,
		Listener:  fmt.Sprintf("nflog:%d", group),
		Facility:  probeFacility,
		Severity:  probeSeverity,
		Timestamp: at,
		AppName:   AppName,
		Text:      fmt.Sprintf("probe from %s to %s port %d", sysban.CanonicalAddr(p.Src), p.ProtoName(), p.DstPort),
	}, true
}
