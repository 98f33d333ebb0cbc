package procmem

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// DropStartupPages unmaps this process's resident pages of its executable's
// read-only mappings (code, constants, the runtime's tables) and returns
// how many bytes were resident there. The pages stay in the page cache:
// code that runs afterwards maps its pages back with a minor fault, so
// after a call the resident set holds what runs since, not what start-up
// ran once. Call it once, after start-up.
//
// It is safe because a private mapping that is never written holds only
// the file's own bytes, which MADV_DONTNEED lets the kernel map again from
// the file. A mapping with private copies (a debugger's breakpoints) is
// left alone, and so is every writable one: dropping those would lose the
// writes.
func DropStartupPages() (uint64, error) {
	e, err := executableOf(0)
	if err != nil {
		return 0, err
	}
	ms, err := ReadSmaps(0)
	if err != nil {
		return 0, err
	}
	var dropped uint64
	for _, m := range droppable(ms, e) {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.Start), uintptr(m.End-m.Start), unix.MADV_DONTNEED); errno != 0 {
			return dropped, fmt.Errorf("madvise %s %x-%x: %w", m.Path, m.Start, m.End, errno)
		}
		dropped += m.Rss
	}
	return dropped, nil
}

// droppable are the mappings of ms DropStartupPages unmaps: e's, private,
// read-only, with no private copy among their pages.
func droppable(ms []Mapping, e exe) []Mapping {
	var out []Mapping
	for _, m := range ms {
		if e.is(m) && m.Private() && !m.Writable() && m.Anonymous == 0 && m.Rss > 0 {
			out = append(out, m)
		}
	}
	return out
}
