package notify

import (
	"context"

	"github.com/sysban/sysban"
)

// Event kinds.
const (
	KindBan   = "ban"
	KindUnban = "unban"
)

// Unban reasons.
const (
	ReasonExpired = "expired" // the ban time ran out
	ReasonManual  = "manual"  // an operator lifted it
	ReasonReload  = "reload"  // the jail left the config on reload
)

// Event is a copy of one ban or unban, as the actions see it.
type Event struct {
	Kind   string     // KindBan or KindUnban
	Ban    sysban.Ban // the ban that started or ended
	Lines  []string   // the log lines that caused the ban; attacker-written
	Reason string     // for unban: ReasonExpired, ReasonManual or ReasonReload
	Host   string     // name of the host sysban runs on
}

// Action delivers one event. Do must honour ctx: the Dispatcher cancels it
// when the drain deadline passes at shutdown.
type Action interface {
	Do(ctx context.Context, ev Event) error
}

// kindFilter is implemented by actions that only want some event kinds, so
// the Dispatcher can skip them before queueing anything.
type kindFilter interface {
	Wants(kind string) bool
}
