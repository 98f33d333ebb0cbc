package nft

import (
	"encoding/binary"
	"slices"

	"github.com/google/nftables"
	sysban "github.com/sysban/sysban"
)

// mergePorts sorts ranges and merges overlapping and adjacent ones. The
// kernel refuses overlapping elements in an interval set, and a config may
// well list "22, 20-25".
func mergePorts(in []sysban.PortRange) []sysban.PortRange {
	if len(in) == 0 {
		return nil
	}
	rs := slices.Clone(in)
	for i, r := range rs {
		if r.First > r.Last {
			rs[i] = sysban.PortRange{First: r.Last, Last: r.First}
		}
	}
	slices.SortFunc(rs, func(a, b sysban.PortRange) int { return int(a.First) - int(b.First) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		// Adjacent (last.Last+1 == r.First) merges too; compare in int so
		// 65535 does not wrap.
		if int(r.First) <= int(last.Last)+1 {
			last.Last = max(last.Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// intervalElements encodes merged, sorted port ranges as interval-set
// elements: each range is a start key and, unless it runs to 65535, an
// "interval end" key one past its last port (nf_tables intervals are
// half-open).
func intervalElements(rs []sysban.PortRange) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, 2*len(rs))
	for _, r := range rs {
		out = append(out, nftables.SetElement{Key: be16(r.First)})
		if r.Last < 0xffff {
			out = append(out, nftables.SetElement{Key: be16(r.Last + 1), IntervalEnd: true})
		}
	}
	return out
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
