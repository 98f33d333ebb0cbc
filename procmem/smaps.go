package procmem

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mapping is one mapping of /proc/PID/smaps with the sizes used here.
type Mapping struct {
	Start, End uint64
	Perms      string // as smaps prints them: "r-xp"
	Dev        string // "fd:01"
	Inode      uint64
	Path       string // "" for an anonymous mapping; "[stack]" and the like for the kernel's
	Rss        uint64 // bytes resident
	Anonymous  uint64 // bytes resident that no file backs (private copies included)
}

// Private reports a private (copy-on-write) mapping.
func (m Mapping) Private() bool { return strings.HasSuffix(m.Perms, "p") }

// Writable reports a mapping the process may write.
func (m Mapping) Writable() bool { return len(m.Perms) > 1 && m.Perms[1] == 'w' }

// ParseSmaps reads the format of /proc/PID/smaps: a header line per
// mapping ("start-end perms offset dev inode [path]"), then "Key: N kB"
// lines.
func ParseSmaps(r io.Reader) ([]Mapping, error) {
	var out []Mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if key, val, ok := strings.Cut(line, ":"); ok && !strings.Contains(key, " ") && !strings.Contains(key, "-") {
			if len(out) == 0 {
				return nil, fmt.Errorf("smaps: %q before any mapping", line)
			}
			m := &out[len(out)-1]
			switch key {
			case "Rss", "Anonymous":
				kb, err := parseKB(val)
				if err != nil {
					return nil, fmt.Errorf("smaps: %s: %w", key, err)
				}
				if key == "Rss" {
					m.Rss = kb << 10
				} else {
					m.Anonymous = kb << 10
				}
			}
			continue
		}
		m, err := parseHeader(line)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("smaps: %w", err)
	}
	return out, nil
}

func parseKB(val string) (uint64, error) {
	f := strings.Fields(val)
	if len(f) != 2 || f[1] != "kB" {
		return 0, fmt.Errorf("%q: want N kB", val)
	}
	return strconv.ParseUint(f[0], 10, 64)
}

func parseHeader(line string) (Mapping, error) {
	f := strings.Fields(line)
	if len(f) < 5 {
		return Mapping{}, fmt.Errorf("smaps: mapping line %q: too few fields", line)
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	inode, err3 := strconv.ParseUint(f[4], 10, 64)
	if !ok || err1 != nil || err2 != nil || err3 != nil || end < start {
		return Mapping{}, fmt.Errorf("smaps: mapping line %q: bad range or inode", line)
	}
	m := Mapping{Start: start, End: end, Perms: f[1], Dev: f[3], Inode: inode}
	if len(f) > 5 {
		// A path may hold spaces (and " (deleted)" after a replaced file).
		m.Path = strings.Join(f[5:], " ")
	}
	return m, nil
}

// ReadSmaps reads /proc/PID/smaps; pid 0 is this process.
func ReadSmaps(pid int) ([]Mapping, error) {
	b, err := os.ReadFile(procPath(pid, "smaps"))
	if err != nil {
		return nil, fmt.Errorf("smaps: %w", err)
	}
	return ParseSmaps(bytes.NewReader(b))
}

func procPath(pid int, name string) string {
	if pid == 0 {
		return "/proc/self/" + name
	}
	return fmt.Sprintf("/proc/%d/%s", pid, name)
}

// exe identifies a process's executable as its mappings name it.
type exe struct {
	path      string
	dev       string
	inode     uint64
	haveInode bool
}

func executableOf(pid int) (exe, error) {
	var e exe
	p, err := os.Readlink(procPath(pid, "exe"))
	if err != nil {
		return e, fmt.Errorf("executable: %w", err)
	}
	e.path = p
	var st unix.Stat_t
	if unix.Stat(procPath(pid, "exe"), &st) == nil {
		e.dev = fmt.Sprintf("%02x:%02x", unix.Major(st.Dev), unix.Minor(st.Dev))
		e.inode, e.haveInode = st.Ino, true
	}
	return e, nil
}

// is reports whether m maps e: by path, or by device and inode (a file
// replaced since it started shows its path with " (deleted)").
func (e exe) is(m Mapping) bool {
	if m.Path == e.path {
		return true
	}
	return e.haveInode && m.Inode == e.inode && m.Dev == e.dev
}
