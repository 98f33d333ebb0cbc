package procmem

import (
	"strings"
	"testing"
)

// A shortened /proc/PID/smaps of a static Go binary, as Linux 6 prints it.
const sampleSmaps = `00400000-01038000 r-xp 00000000 fd:01 1234                               /usr/bin/sysban
Size:              12512 kB
Rss:                7896 kB
Anonymous:             0 kB
01038000-01bf2000 r--p 00c38000 fd:01 1234                               /usr/bin/sysban
Size:              12008 kB
Rss:                8232 kB
Anonymous:             0 kB
01bf2000-01c6e000 rw-p 017f2000 fd:01 1234                               /usr/bin/sysban
Size:                496 kB
Rss:                 432 kB
Anonymous:           120 kB
01c6e000-03cb4000 rw-p 00000000 00:00 0 
Size:              33048 kB
Rss:                 124 kB
Anonymous:           124 kB
7fbd2d201000-7fbd2d209000 r--s 00000000 fd:01 99                         /var/lib/sysban/sysban.db
Size:                 32 kB
Rss:                  24 kB
Anonymous:             0 kB
7ffe86e57000-7ffe86e78000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  16 kB
Anonymous:            16 kB
VmFlags: rd wr mr mw me gd ac
`

func TestParseSmaps(t *testing.T) {
	ms, err := ParseSmaps(strings.NewReader(sampleSmaps))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 6 {
		t.Fatalf("%d mappings, want 6", len(ms))
	}
	want := []Mapping{
		{Start: 0x400000, End: 0x1038000, Perms: "r-xp", Dev: "fd:01", Inode: 1234, Path: "/usr/bin/sysban", Rss: 7896 << 10},
		{Start: 0x1bf2000, End: 0x1c6e000, Perms: "rw-p", Dev: "fd:01", Inode: 1234, Path: "/usr/bin/sysban", Rss: 432 << 10, Anonymous: 120 << 10},
		{Start: 0x1c6e000, End: 0x3cb4000, Perms: "rw-p", Dev: "00:00", Rss: 124 << 10, Anonymous: 124 << 10},
		{Start: 0x7ffe86e57000, End: 0x7ffe86e78000, Perms: "rw-p", Dev: "00:00", Path: "[stack]", Rss: 16 << 10, Anonymous: 16 << 10},
	}
	for i, w := range want {
		got := ms[[]int{0, 2, 3, 5}[i]]
		if got != w {
			t.Errorf("mapping %x: %+v, want %+v", w.Start, got, w)
		}
	}

	for _, bad := range []string{
		"Rss: 4 kB\n", // a size before any mapping
		"00400000-0040 r-xp 00000000 fd:01 1 /x\n",         // end before start
		"00400000-01038000 r-xp 00000000 fd:01\n",          // no inode
		"00400000-01038000 r-xp 0 fd:01 1 /x\nRss: 4 MB\n", // unit
	} {
		if _, err := ParseSmaps(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseSmaps(%q) accepted", bad)
		}
	}
}

func TestBreakdownAndDroppable(t *testing.T) {
	ms, err := ParseSmaps(strings.NewReader(sampleSmaps))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		e    exe
	}{
		{"by path", exe{path: "/usr/bin/sysban"}},
		{"by inode, file replaced", exe{path: "/usr/bin/sysban (deleted)", dev: "fd:01", inode: 1234, haveInode: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := breakdown(ms, tt.e)
			want := Breakdown{Anon: (120 + 124 + 16) << 10, ExeCode: 7896 << 10, ExeReadOnly: 8232 << 10, ExeData: (432 - 120) << 10, OtherFiles: 24 << 10}
			if b != want {
				t.Errorf("breakdown %+v, want %+v", b, want)
			}
			if b.Total() != (7896+8232+432+124+24+16)<<10 {
				t.Errorf("total %d is not the sum of Rss", b.Total())
			}
			// Only the code and the read-only data: never the written data,
			// the database (shared), or anonymous memory.
			var got []string
			for _, m := range droppable(ms, tt.e) {
				got = append(got, m.Perms)
			}
			if strings.Join(got, " ") != "r-xp r--p" {
				t.Errorf("droppable %v, want the code and read-only mappings", got)
			}
		})
	}

	// A mapping with private copies (a debugger's breakpoints) is kept.
	withCopy := append([]Mapping(nil), ms...)
	withCopy[0].Anonymous = 4 << 10
	if d := droppable(withCopy, exe{path: "/usr/bin/sysban"}); len(d) != 1 || d[0].Perms != "r--p" {
		t.Errorf("droppable with a written code page: %+v", d)
	}
}

// TestDropStartupPages runs it on the test binary itself: the executable's
// resident read-only pages fall, and the process goes on running.
func TestDropStartupPages(t *testing.T) {
	before, err := ReadBreakdown(0)
	if err != nil {
		t.Fatal(err)
	}
	if before.ExeCode == 0 || before.ExeReadOnly == 0 {
		t.Fatalf("no resident code or read-only data found: %+v", before)
	}
	dropped, err := DropStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	after, err := ReadBreakdown(0)
	if err != nil {
		t.Fatal(err)
	}
	if dropped == 0 || after.ExeCode+after.ExeReadOnly >= before.ExeCode+before.ExeReadOnly {
		t.Errorf("dropped %d; executable's read-only pages %d before, %d after", dropped, before.ExeCode+before.ExeReadOnly, after.ExeCode+after.ExeReadOnly)
	}
	t.Logf("before %v; dropped %s; after %v", before, mib(dropped), after)
}

// FuzzParseSmaps: any text is refused or parsed into mappings whose ranges
// are ordered, and a breakdown of them adds up to their Rss.
func FuzzParseSmaps(f *testing.F) {
	f.Add(sampleSmaps)
	f.Add("00400000-00401000 r-xp 00000000 00:00 0\nRss: 8 kB\nAnonymous: 12 kB\n")
	f.Fuzz(func(t *testing.T, text string) {
		ms, err := ParseSmaps(strings.NewReader(text))
		if err != nil {
			return
		}
		var rss uint64
		for _, m := range ms {
			if m.End < m.Start {
				t.Fatalf("mapping %+v ends before it starts", m)
			}
			rss += max(m.Rss, m.Anonymous)
		}
		if b := breakdown(ms, exe{path: "/usr/bin/sysban"}); b.Total() != rss {
			t.Fatalf("breakdown %+v adds up to %d, mappings to %d", b, b.Total(), rss)
		}
	})
}
