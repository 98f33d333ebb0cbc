package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	sysban "github.com/sysban/sysban"
	"golang.org/x/sys/unix"
)

// Unit tests: no root, no kernel.

func pr(first, last uint16) sysban.PortRange { return sysban.PortRange{First: first, Last: last} }

func TestMergePorts(t *testing.T) {
	tests := []struct {
		name string
		in   []sysban.PortRange
		want []sysban.PortRange
	}{
		{"none", nil, nil},
		{"one", []sysban.PortRange{pr(22, 22)}, []sysban.PortRange{pr(22, 22)}},
		{"sorted", []sysban.PortRange{pr(443, 443), pr(80, 80)}, []sysban.PortRange{pr(80, 80), pr(443, 443)}},
		{"overlap", []sysban.PortRange{pr(20, 25), pr(22, 22)}, []sysban.PortRange{pr(20, 25)}},
		{"adjacent", []sysban.PortRange{pr(1, 10), pr(11, 20)}, []sysban.PortRange{pr(1, 20)}},
		{"gap of one stays", []sysban.PortRange{pr(1, 10), pr(12, 20)}, []sysban.PortRange{pr(1, 10), pr(12, 20)}},
		{"top", []sysban.PortRange{pr(65535, 65535), pr(60000, 65534)}, []sysban.PortRange{pr(60000, 65535)}},
		{"reversed is swapped", []sysban.PortRange{pr(30, 20)}, []sysban.PortRange{pr(20, 30)}},
		{"duplicate", []sysban.PortRange{pr(22, 22), pr(22, 22)}, []sysban.PortRange{pr(22, 22)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			got := mergePorts(tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("mergePorts(%v) = %v, want %v", tt.in, got, tt.want)
			}
			if !slices.Equal(in, tt.in) {
				t.Errorf("mergePorts modified its input: %v", tt.in)
			}
		})
	}
}

func TestIntervalElements(t *testing.T) {
	got := intervalElements([]sysban.PortRange{pr(22, 22), pr(1000, 2000), pr(65000, 65535)})
	want := []nftables.SetElement{
		{Key: be16(22)}, {Key: be16(23), IntervalEnd: true},
		{Key: be16(1000)}, {Key: be16(2001), IntervalEnd: true},
		{Key: be16(65000)}, // runs to the top: no end element
	}
	if len(got) != len(want) {
		t.Fatalf("got %d elements, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if !slices.Equal(got[i].Key, want[i].Key) || got[i].IntervalEnd != want[i].IntervalEnd {
			t.Errorf("element %d = %v/%v, want %v/%v", i, got[i].Key, got[i].IntervalEnd, want[i].Key, want[i].IntervalEnd)
		}
	}
}

// FuzzMergePorts checks on arbitrary port lists (from configuration) that
// merging keeps exactly the same ports and yields sorted, disjoint,
// non-adjacent ranges, which the interval encoding relies on.
func FuzzMergePorts(f *testing.F) {
	f.Add([]byte{0, 22, 0, 22})
	f.Add([]byte{0, 20, 0, 25, 0, 22, 0, 22, 255, 255, 255, 255})
	f.Add([]byte{1, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var in []sysban.PortRange
		for len(b) >= 4 && len(in) < 64 {
			in = append(in, pr(uint16(b[0])<<8|uint16(b[1]), uint16(b[2])<<8|uint16(b[3])))
			b = b[4:]
		}
		covered := func(rs []sysban.PortRange, p int) bool {
			for _, r := range rs {
				lo, hi := min(r.First, r.Last), max(r.First, r.Last)
				if p >= int(lo) && p <= int(hi) {
					return true
				}
			}
			return false
		}
		out := mergePorts(in)
		for i, r := range out {
			if r.First > r.Last {
				t.Fatalf("range %v reversed", r)
			}
			if i > 0 && int(out[i-1].Last)+1 >= int(r.First) {
				t.Fatalf("ranges %v and %v overlap or touch", out[i-1], r)
			}
		}
		// Compare coverage at every boundary and its neighbours.
		for _, r := range in {
			for _, p := range []int{int(r.First) - 1, int(r.First), int(r.First) + 1, int(r.Last) - 1, int(r.Last), int(r.Last) + 1} {
				if p < 0 || p > 0xffff {
					continue
				}
				if covered(in, p) != covered(out, p) {
					t.Fatalf("port %d: in %v covered=%v, merged %v covered=%v", p, in, covered(in, p), out, covered(out, p))
				}
			}
		}
		// The interval encoding alternates start and end keys.
		els := intervalElements(out)
		for i, e := range els {
			if len(e.Key) != 2 {
				t.Fatalf("element %d key %v", i, e.Key)
			}
		}
	})
}

func TestElementTimeout(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		ban    sysban.Ban
		want   time.Duration
		wantOK bool
	}{
		{"permanent", sysban.Ban{Start: now.Add(-time.Hour), Duration: sysban.Permanent}, 0, true},
		{"fresh", sysban.Ban{Start: now, Duration: 10 * time.Minute}, 10 * time.Minute, true},
		{"half over", sysban.Ban{Start: now.Add(-5 * time.Minute), Duration: 10 * time.Minute}, 5 * time.Minute, true},
		{"over", sysban.Ban{Start: now.Add(-10 * time.Minute), Duration: 10 * time.Minute}, 0, false},
		{"long over", sysban.Ban{Start: now.Add(-time.Hour), Duration: time.Minute}, 0, false},
		// Rounding down would give 0 ms, which the kernel reads as "no
		// timeout", i.e. permanent.
		{"sub-millisecond left", sysban.Ban{Start: now, Duration: 300 * time.Microsecond}, time.Millisecond, true},
		{"rounds up", sysban.Ban{Start: now, Duration: 1500 * time.Microsecond}, 2 * time.Millisecond, true},
		{"capped", sysban.Ban{Start: now, Duration: 200 * 365 * 24 * time.Hour}, maxTimeout, true},
		{"future start", sysban.Ban{Start: now.Add(time.Minute), Duration: time.Minute}, 2 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := elementTimeout(tt.ban, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("elementTimeout = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestPendingSetLongerBanWins(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	tests := []struct {
		name     string
		timeouts []time.Duration
		want     time.Duration
	}{
		{"longer later", []time.Duration{time.Minute, time.Hour}, time.Hour},
		{"shorter later", []time.Duration{time.Hour, time.Minute}, time.Hour},
		{"permanent later", []time.Duration{time.Hour, 0}, 0},
		{"permanent first", []time.Duration{0, time.Hour}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p pendingSet
			for _, to := range tt.timeouts {
				p.put(a, to)
			}
			p.put(b, time.Second)
			if len(p.elems) != 2 {
				t.Fatalf("got %d elements, want 2 (one per address)", len(p.elems))
			}
			if p.elems[0].Timeout != tt.want || !slices.Equal(p.elems[0].Key, a.AsSlice()) {
				t.Errorf("element = %v timeout %v, want %v timeout %v", p.elems[0].Key, p.elems[0].Timeout, a, tt.want)
			}
		})
	}
}

func TestToElement(t *testing.T) {
	v4 := netip.MustParseAddr("198.51.100.7")
	v6 := netip.MustParseAddr("2001:db8::7")
	tests := []struct {
		name   string
		in     nftables.SetElement
		want   Element
		wantOK bool
	}{
		{"permanent v4", nftables.SetElement{Key: v4.AsSlice()}, Element{Addr: v4, Permanent: true}, true},
		{"timed v6", nftables.SetElement{Key: v6.AsSlice(), Timeout: time.Hour, Expires: time.Minute}, Element{Addr: v6, Expires: time.Minute}, true},
		{"expired", nftables.SetElement{Key: v4.AsSlice(), Timeout: time.Hour}, Element{}, false},
		{"bad key", nftables.SetElement{Key: []byte{1, 2, 3}}, Element{}, false},
		{"empty key", nftables.SetElement{}, Element{}, false},
		{"interval end", nftables.SetElement{Key: v4.AsSlice(), IntervalEnd: true}, Element{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := toElement(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("toElement = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// FuzzToElement feeds arbitrary kernel element keys and times: conversion
// must never panic and must only accept 4- and 16-byte keys.
func FuzzToElement(f *testing.F) {
	f.Add([]byte{192, 0, 2, 1}, int64(0), int64(0), false)
	f.Add(make([]byte, 16), int64(time.Hour), int64(time.Minute), false)
	f.Add([]byte{1}, int64(-1), int64(-1), true)
	f.Fuzz(func(t *testing.T, key []byte, timeout, expires int64, end bool) {
		e, ok := toElement(nftables.SetElement{Key: key, Timeout: time.Duration(timeout), Expires: time.Duration(expires), IntervalEnd: end})
		if !ok {
			return
		}
		if len(key) != 4 && len(key) != 16 {
			t.Fatalf("accepted a %d-byte key", len(key))
		}
		if !slices.Equal(e.Addr.AsSlice(), key) {
			t.Fatalf("address %v from key %v", e.Addr, key)
		}
		if e.Permanent != (timeout == 0) || (!e.Permanent && e.Expires <= 0) {
			t.Fatalf("element %+v from timeout %d expires %d", e, timeout, expires)
		}
	})
}

func TestValidName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"sshd", true},
		{"postfix-sasl", true},
		{"nginx.http_auth", true},
		{"_x", true},
		{"Jail2", true},
		{"", false},
		{"3proxy", true},
		{"-x", false},
		{".x", false},
		{"a b", false},
		{"a;b", false},
		{"a\"b", false},
		{"a/b", false},
		{"ä", false},
		{strings.Repeat("a", maxNameLen), true},
		{strings.Repeat("a", maxNameLen+1), false},
	}
	for _, tt := range tests {
		if got := validName(tt.in); got != tt.want {
			t.Errorf("validName(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestValidateRules(t *testing.T) {
	ok := sysban.JailRule{Name: "ssh", Ports: []sysban.PortRange{pr(22, 22)}, Protocol: sysban.TCP, Verdict: sysban.Drop}
	with := func(f func(*sysban.JailRule)) sysban.JailRule {
		r := ok
		f(&r)
		return r
	}
	tests := []struct {
		name    string
		rules   []sysban.JailRule
		wantErr string // "" = valid
	}{
		{"valid", []sysban.JailRule{ok}, ""},
		{"none", nil, ""},
		{"all no ports", []sysban.JailRule{with(func(r *sysban.JailRule) { r.Protocol, r.Ports = sysban.All, nil })}, ""},
		{"duplicate", []sysban.JailRule{ok, ok}, `jail "ssh": defined twice`},
		{"bad name", []sysban.JailRule{with(func(r *sysban.JailRule) { r.Name = "a b" })}, `jail "a b": name`},
		{"bad protocol", []sysban.JailRule{with(func(r *sysban.JailRule) { r.Protocol = "icmp" })}, `unknown protocol "icmp"`},
		{"empty protocol", []sysban.JailRule{with(func(r *sysban.JailRule) { r.Protocol = "" })}, `unknown protocol ""`},
		{"bad verdict", []sysban.JailRule{with(func(r *sysban.JailRule) { r.Verdict = "accept" })}, `unknown verdict "accept"`},
		{"reversed ports", []sysban.JailRule{with(func(r *sysban.JailRule) { r.Ports = []sysban.PortRange{pr(30, 20)} })}, "30-20 is reversed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateRules(tt.rules)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			case err != nil && !strings.HasPrefix(err.Error(), "nft: "):
				t.Fatalf("error %q lacks the stage prefix", err)
			}
		})
	}
}

func TestRuleParts(t *testing.T) {
	tcp, udp, sctp, dccp := byte(unix.IPPROTO_TCP), byte(unix.IPPROTO_UDP), byte(unix.IPPROTO_SCTP), byte(unix.IPPROTO_DCCP)
	type part struct {
		protos  []byte
		verdict string
	}
	name := func(v any) string {
		switch v {
		case verdictDrop:
			return "drop"
		case rejectTCP:
			return "reset"
		case rejectOther:
			return "icmpx"
		}
		return fmt.Sprintf("%T", v)
	}
	ports := []sysban.PortRange{pr(22, 22)}
	tests := []struct {
		proto   sysban.Protocol
		ports   []sysban.PortRange
		verdict sysban.Verdict
		want    []part
	}{
		{sysban.TCP, ports, sysban.Drop, []part{{[]byte{tcp}, "drop"}}},
		{sysban.TCP, nil, sysban.Reject, []part{{[]byte{tcp}, "reset"}}},
		{sysban.UDP, ports, sysban.Drop, []part{{[]byte{udp}, "drop"}}},
		{sysban.UDP, ports, sysban.Reject, []part{{[]byte{udp}, "icmpx"}}},
		{sysban.All, nil, sysban.Drop, []part{{nil, "drop"}}},
		{sysban.All, nil, sysban.Reject, []part{{[]byte{tcp}, "reset"}, {nil, "icmpx"}}},
		{sysban.All, ports, sysban.Drop, []part{{[]byte{tcp, udp, sctp, dccp}, "drop"}}},
		{sysban.All, ports, sysban.Reject, []part{{[]byte{tcp}, "reset"}, {[]byte{udp, sctp, dccp}, "icmpx"}}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%d_%s", tt.proto, len(tt.ports), tt.verdict), func(t *testing.T) {
			got := ruleParts(sysban.JailRule{Name: "j", Protocol: tt.proto, Ports: tt.ports, Verdict: tt.verdict})
			if len(got) != len(tt.want) {
				t.Fatalf("got %d rules, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				if !slices.Equal(got[i].protos, w.protos) || name(got[i].verdict) != w.verdict {
					t.Errorf("rule %d = %v %s, want %v %s", i, got[i].protos, name(got[i].verdict), w.protos, w.verdict)
				}
			}
		})
	}
}

func TestExplain(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"eperm", &netlink.OpError{Op: "receive", Err: syscall.EPERM}, "operation not permitted: sysban needs CAP_NET_ADMIN"},
		{"eperm wrapped", fmt.Errorf("conn.Receive: %w", os.NewSyscallError("sendmsg", syscall.EPERM)), "needs CAP_NET_ADMIN"},
		{"no module", &netlink.OpError{Op: "receive", Err: syscall.EOPNOTSUPP}, "nf_tables kernel module not available"},
		{"no protocol", os.NewSyscallError("socket", syscall.EPROTONOSUPPORT), "nf_tables kernel module not available"},
		{"other", syscall.ENOENT, "nft: op: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := explain("op", tt.err)
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "nft: op: ") {
				t.Errorf("explain = %q, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("explain does not wrap %v", tt.err)
			}
		})
	}
}

// TestChunkBound checks the element-size arithmetic behind maxChunkSize
// against the library's real encoding: a message of maxChunkSize IPv6
// elements with timeouts (the largest kind) keeps all of them, and one more
// element makes the uint16 attribute length wrap, which is the defect the
// chunking avoids.
func TestChunkBound(t *testing.T) {
	if maxChunkSize < DefaultChunkSize {
		t.Fatalf("maxChunkSize %d below the default chunk size %d", maxChunkSize, DefaultChunkSize)
	}
	for _, tt := range []struct {
		n        int
		wantKept bool
	}{
		{DefaultChunkSize, true},
		{maxChunkSize, true},
		{maxChunkSize + 1, false},
	} {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			got := encodedElementCount(t, tt.n)
			if (got == tt.n) != tt.wantKept {
				t.Errorf("%d elements encoded, the message carries %d", tt.n, got)
			}
		})
	}
}

// encodedElementCount queues n IPv6 elements with timeouts through
// google/nftables and counts how many the resulting message really carries,
// parsing it as the kernel does.
func encodedElementCount(t *testing.T, n int) int {
	t.Helper()
	var sent []netlink.Message
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		sent = append(sent, req...)
		return []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 20)}}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := &nftables.Set{
		Table:      &nftables.Table{Name: "t", Family: nftables.TableFamilyINet},
		Name:       "j_v6",
		ID:         1,
		KeyType:    nftables.TypeIP6Addr,
		HasTimeout: true,
	}
	elems := make([]nftables.SetElement, n)
	for i := range elems {
		a := netip.MustParseAddr("2001:db8::").As16()
		a[14], a[15] = byte(i>>8), byte(i)
		elems[i] = nftables.SetElement{Key: a[:], Timeout: 365 * 24 * time.Hour}
	}
	if err := c.SetAddElements(s, elems); err != nil {
		t.Fatal(err)
	}
	_ = c.Flush() // only the captured request matters
	for _, m := range sent {
		if m.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM) {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0
		}
		count := 0
		for ad.Next() {
			if ad.Type() != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				continue
			}
			inner, err := netlink.NewAttributeDecoder(ad.Bytes())
			if err != nil {
				return 0
			}
			for inner.Next() {
				count++
			}
		}
		return count
	}
	t.Fatal("no NEWSETELEM message sent")
	return 0
}

func TestDedupeElements(t *testing.T) {
	k := func(b byte) nftables.SetElement { return nftables.SetElement{Key: []byte{10, 0, 0, b}} }
	tests := []struct {
		name string
		in   []nftables.SetElement
		want []byte // last key bytes
	}{
		{"empty", nil, nil},
		{"distinct", []nftables.SetElement{k(1), k(2), k(3)}, []byte{1, 2, 3}},
		{"repeat later", []nftables.SetElement{k(1), k(2), k(1), k(3), k(2)}, []byte{1, 2, 3}},
		{"repeat adjacent", []nftables.SetElement{k(4), k(4)}, []byte{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dedupeElements(tt.in)
			var keys []byte
			for _, e := range got {
				keys = append(keys, e.Key[3])
			}
			if !slices.Equal(keys, tt.want) {
				t.Errorf("dedupeElements = %v, want %v", keys, tt.want)
			}
		})
	}
}
