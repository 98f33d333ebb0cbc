package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysban/sysban"
)

// Hostnames in <HOST> positions (PAM's rhost=, sendmail's relay names) are
// resolved here, off the hot path: Handle only looks in the cache and
// otherwise queues a request without blocking; a few workers started by Run
// do the lookups. Whatever does not resolve is never banned.
//
// The names are often attacker-influenced (a reverse-DNS name is whatever
// the owner of the address block publishes), so resolving them can point a
// ban at someone else's address; that is why "warn" logs every resolution
// and "no" exists. Protected addresses and ignoreip apply to the results.

// UseDNS values for JailSpec.UseDNS.
const (
	UseDNSYes  = "yes"  // resolve hostnames and count each address
	UseDNSWarn = "warn" // the same, logging a warning naming the hostname (default)
	UseDNSNo   = "no"   // never resolve: hostnames count as unresolved
)

// Resolver limits. The queue and cache bound the memory a flood of
// distinct names can take; the timeout bounds how long a worker is stuck on
// a dead server.
const (
	dnsWorkers     = 4
	dnsQueueSize   = 1024
	dnsCacheSize   = 4096
	dnsTimeout     = 2 * time.Second
	dnsTTL         = 5 * time.Minute // answers are cached this long
	dnsNegativeTTL = time.Minute     // failures (no address) this long
	dnsMaxAddrs    = 16              // addresses counted per name
	dnsMaxLine     = 512             // bytes of the line kept for the debug log
)

// lookupFunc resolves a hostname to addresses (net.Resolver.LookupNetIP's
// shape).
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func defaultLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// DNSStats are the resolver's counters.
type DNSStats struct {
	Lookups   uint64 // lookups made
	Failures  uint64 // lookups that failed or found no address
	CacheHits uint64 // hostnames answered from the cache
	Dropped   uint64 // requests dropped because the queue was full
	Cached    int    // names in the cache
}

// dnsRequest is one failure naming a hostname, for the jails of one route
// that resolve.
type dnsRequest struct {
	host   string
	jails  []*jail
	sender netip.Addr
	line   string
}

type dnsEntry struct {
	addrs  []netip.Addr // nil: did not resolve
	expiry time.Time
}

// resolver is the cache, queue and workers.
type resolver struct {
	lookup  lookupFunc
	now     func() time.Time
	timeout time.Duration // per lookup; dnsTimeout, shorter in tests
	queue   chan dnsRequest

	mu    sync.Mutex
	cache map[string]dnsEntry

	lookups, failures, hits, dropped atomic.Uint64
}

func newResolver(lookup lookupFunc, now func() time.Time) *resolver {
	if lookup == nil {
		lookup = defaultLookup
	}
	return &resolver{
		lookup:  lookup,
		now:     now,
		timeout: dnsTimeout,
		queue:   make(chan dnsRequest, dnsQueueSize),
		cache:   make(map[string]dnsEntry),
	}
}

// cached returns the cached answer for host, if fresh.
func (r *resolver) cached(host string) (dnsEntry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[host]
	if !ok {
		return e, false
	}
	if !r.now().Before(e.expiry) {
		delete(r.cache, host)
		return e, false
	}
	return e, true
}

func (r *resolver) store(host string, addrs []netip.Addr) {
	ttl := dnsTTL
	if len(addrs) == 0 {
		addrs, ttl = nil, dnsNegativeTTL
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= dnsCacheSize {
		// Drop expired entries; if none were, an arbitrary eighth. A
		// lost entry only costs a repeated lookup.
		now := r.now()
		for h, e := range r.cache {
			if !now.Before(e.expiry) {
				delete(r.cache, h)
			}
		}
		for h := range r.cache {
			if len(r.cache) < dnsCacheSize-dnsCacheSize/8 {
				break
			}
			delete(r.cache, h)
		}
	}
	r.cache[host] = dnsEntry{addrs: addrs, expiry: r.now().Add(ttl)}
}

func (r *resolver) stats() DNSStats {
	r.mu.Lock()
	n := len(r.cache)
	r.mu.Unlock()
	return DNSStats{
		Lookups:   r.lookups.Load(),
		Failures:  r.failures.Load(),
		CacheHits: r.hits.Load(),
		Dropped:   r.dropped.Load(),
		Cached:    n,
	}
}

// resolveOne looks host up with the timeout and caches the answer.
func (r *resolver) resolveOne(ctx context.Context, host string) ([]netip.Addr, error) {
	if e, ok := r.cached(host); ok {
		r.hits.Add(1)
		return e.addrs, nil
	}
	r.lookups.Add(1)
	lctx, cancel := context.WithTimeout(ctx, r.timeout)
	addrs, err := r.lookup(lctx, host)
	cancel()
	if ctx.Err() != nil {
		// Shutting down: do not cache a failure that is ours.
		return nil, ctx.Err()
	}
	if err == nil && len(addrs) == 0 {
		err = errors.New("no addresses")
	}
	if err != nil {
		r.failures.Add(1)
		r.store(host, nil)
		return nil, fmt.Errorf("pipeline: resolve %q: %w", host, err)
	}
	if len(addrs) > dnsMaxAddrs {
		addrs = addrs[:dnsMaxAddrs]
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if a.IsValid() {
			out = append(out, sysban.CanonicalAddr(a))
		}
	}
	r.store(host, out)
	return out, nil
}

// hostFailure handles a failure of route rt naming a hostname: jails that
// do not resolve count it as unresolved; for the others the cache answers
// at once or a lookup is queued. It never blocks.
func (p *Pipeline) hostFailure(rt *route, host string, sender netip.Addr, line string) {
	for _, j := range rt.noDNS {
		j.unresolved.Add(1)
	}
	if len(rt.dns) == 0 {
		return
	}
	if e, ok := p.dns.cached(host); ok {
		p.dns.hits.Add(1)
		p.countResolved(dnsRequest{host: host, jails: rt.dns, sender: sender, line: line}, e.addrs, false)
		return
	}
	if len(line) > dnsMaxLine {
		line = line[:dnsMaxLine]
	}
	req := dnsRequest{host: strings.Clone(host), jails: rt.dns, sender: sender, line: strings.Clone(line)}
	select {
	case p.dns.queue <- req:
	default:
		p.dns.dropped.Add(1)
		for _, j := range rt.dns {
			j.unresolved.Add(1)
		}
	}
}

// countResolved counts req's failure once per address host resolved to;
// no address means unresolved. fresh marks a new lookup (not a cache hit):
// "warn" jails log those.
func (p *Pipeline) countResolved(req dnsRequest, addrs []netip.Addr, fresh bool) {
	if len(addrs) == 0 {
		for _, j := range req.jails {
			j.unresolved.Add(1)
		}
		return
	}
	now := p.now()
	for _, j := range req.jails {
		j.resolved.Add(1)
		if fresh && j.spec.UseDNS != UseDNSYes {
			p.log.Warn("banning by hostname: counted the addresses it resolves to", "jail", j.spec.Name, "hostname", req.host, "addrs", addrs)
		}
	}
	for _, a := range addrs {
		protected := p.isProtected(a) || a == req.sender
		for _, j := range req.jails {
			p.count(j, a, protected, now, req.line, "", req.sender)
		}
	}
}

// runResolver runs the lookup workers until ctx is done.
func (p *Pipeline) runResolver(ctx context.Context) {
	var wg sync.WaitGroup
	for range dnsWorkers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case req := <-p.dns.queue:
					addrs, err := p.dns.resolveOne(ctx, req.host)
					if ctx.Err() != nil {
						return
					}
					if err != nil {
						p.log.Debug("hostname not resolved: not banned", "host", req.host, "err", err)
					}
					p.countResolved(req, addrs, err == nil)
				}
			}
		})
	}
	wg.Wait()
}
