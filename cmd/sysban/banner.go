package main

import (
	"context"
	"os"
	"sync/atomic"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/nft"
	"github.com/sysban/sysban/notify"
	"github.com/sysban/sysban/store"
)

// announcer is the last link of the ban chain pipeline -> store.Journal ->
// nft: once a batch is durable and in the kernel it hands a copy of each ban
// to the notifier. Notify never blocks, so a dead mail relay cannot slow a
// ban down.
type announcer struct {
	next     sysban.Applier
	notifier *notifierRef
	host     string
}

var (
	_ sysban.Applier         = (*announcer)(nil)
	_ nft.VersionedBanSource = storeSource{}
)

// notifierRef is the current notifier; a reload swaps in one built from the
// new actions and lets the old one drain.
type notifierRef struct {
	p atomic.Pointer[notify.Dispatcher]
}

func (r *notifierRef) Notify(ev notify.Event) { r.p.Load().Notify(ev) }

// swap installs d and returns the previous notifier.
func (r *notifierRef) swap(d *notify.Dispatcher) *notify.Dispatcher { return r.p.Swap(d) }

func (a *announcer) Apply(ctx context.Context, bans []sysban.Ban) error {
	if err := a.next.Apply(ctx, bans); err != nil {
		return err
	}
	for _, b := range bans {
		a.notifier.Notify(notify.Event{Kind: notify.KindBan, Ban: b, Lines: b.Lines, Host: a.host})
	}
	return nil
}

// storeSource gives nft's Guard the bans that must be in the kernel: the
// store's current bans.
type storeSource struct{ st *store.Store }

// EachDue gives the bans in force one at a time, without their lines (the
// kernel needs none): the Guard compares them with the kernel every few
// seconds, and with 100,000 bans a list of them, lines or not, was most of
// what it held.
func (s storeSource) EachDue(_ context.Context, now time.Time, fn func(sysban.Ban)) error {
	return s.st.EachDue(now, func(r store.Record) { fn(r.Ban) })
}

// Generation lets the Guard skip reading the store while no ban changed
// (and the kernel's ruleset did not either): an idle host's checks then
// touch none of the store's pages.
func (s storeSource) Generation() uint64 { return s.st.Generation() }

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}
