package nflog

import (
	"container/list"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sysban/sysban"
)

// DefaultTrafficSize is how many addresses a Traffic remembers by default.
const DefaultTrafficSize = 65536

// Seen is the banned traffic of one address in one jail.
type Seen struct {
	Jail        string
	Addr        netip.Addr
	Packets     uint64 // packets logged (the log rule's rate limit applies)
	First, Last time.Time
}

// Traffic remembers, per address and jail, how many logged packets a
// banned address sent and when, for `sysban banned ADDR`. It holds at most
// its size in addresses and forgets the one seen least recently first, so
// a flood of spoofed sources costs bounded memory. Safe for concurrent use.
type Traffic struct {
	max int

	mu    sync.Mutex
	order *list.List                   // of *trafficEntry, most recent first
	addrs map[netip.Addr]*list.Element // -> element of order
}

type trafficEntry struct {
	addr  netip.Addr
	jails []Seen // usually one
}

// NewTraffic returns a Traffic remembering at most size addresses
// (DefaultTrafficSize when size <= 0).
func NewTraffic(size int) *Traffic {
	if size <= 0 {
		size = DefaultTrafficSize
	}
	return &Traffic{max: size, order: list.New(), addrs: map[netip.Addr]*list.Element{}}
}

// Add counts one packet of addr in jail at at.
func (t *Traffic) Add(jail string, addr netip.Addr, at time.Time) {
	addr = sysban.CanonicalAddr(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.addrs[addr]
	if !ok {
		if t.order.Len() >= t.max {
			oldest := t.order.Back()
			delete(t.addrs, oldest.Value.(*trafficEntry).addr)
			t.order.Remove(oldest)
		}
		el = t.order.PushFront(&trafficEntry{addr: addr})
		t.addrs[addr] = el
	} else {
		t.order.MoveToFront(el)
	}
	e := el.Value.(*trafficEntry)
	for i := range e.jails {
		if e.jails[i].Jail == jail {
			e.jails[i].Packets++
			e.jails[i].Last = later(e.jails[i].Last, at)
			return
		}
	}
	e.jails = append(e.jails, Seen{Jail: jail, Addr: addr, Packets: 1, First: at, Last: at})
}

// Lookup returns what is known of addr, by jail name.
func (t *Traffic) Lookup(addr netip.Addr) []Seen {
	addr = sysban.CanonicalAddr(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.addrs[addr]
	if !ok {
		return nil
	}
	out := slices.Clone(el.Value.(*trafficEntry).jails)
	slices.SortFunc(out, func(a, b Seen) int { return strings.Compare(a.Jail, b.Jail) })
	return out
}

// Len is how many addresses t remembers.
func (t *Traffic) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order.Len()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
