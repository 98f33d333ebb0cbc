package procmem

import "fmt"

// Breakdown is a process's resident set by what holds it, in bytes. Anon
// and File add up to VmRSS, as RssAnon and RssFile (+ RssShmem) of
// /proc/PID/status do.
type Breakdown struct {
	// Anon is every anonymous page: the Go heap and stacks, the runtime's
	// metadata, and the private copies of the executable's written data.
	Anon uint64
	// The executable's file-backed pages: code, read-only data (constants,
	// the runtime's type and function tables), and the unwritten part of
	// its initialised data.
	ExeCode, ExeReadOnly, ExeData uint64
	// OtherFiles are other files' pages (the store's database).
	OtherFiles uint64
}

// File is the file-backed part.
func (b Breakdown) File() uint64 { return b.ExeCode + b.ExeReadOnly + b.ExeData + b.OtherFiles }

// Total is the resident set.
func (b Breakdown) Total() uint64 { return b.Anon + b.File() }

func (b Breakdown) String() string {
	return fmt.Sprintf("anon %s; file %s (code %s, read-only data %s, data %s, other files %s)",
		mib(b.Anon), mib(b.File()), mib(b.ExeCode), mib(b.ExeReadOnly), mib(b.ExeData), mib(b.OtherFiles))
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// breakdown sums ms, whose executable is e.
func breakdown(ms []Mapping, e exe) Breakdown {
	var b Breakdown
	for _, m := range ms {
		b.Anon += m.Anonymous
		file := m.Rss - min(m.Rss, m.Anonymous)
		switch {
		case !e.is(m):
			b.OtherFiles += file
		case len(m.Perms) > 2 && m.Perms[2] == 'x':
			b.ExeCode += file
		case m.Writable():
			b.ExeData += file
		default:
			b.ExeReadOnly += file
		}
	}
	return b
}

// ReadBreakdown reads process pid's resident set by part; pid 0 is this
// process.
func ReadBreakdown(pid int) (Breakdown, error) {
	e, err := executableOf(pid)
	if err != nil {
		return Breakdown{}, err
	}
	ms, err := ReadSmaps(pid)
	if err != nil {
		return Breakdown{}, err
	}
	return breakdown(ms, e), nil
}
