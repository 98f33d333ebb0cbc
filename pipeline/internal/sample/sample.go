// Package sample reads the annotated sample logs of the built-in filters
// (pipeline/filters/testdata, format in its README.md), for the tests,
// fuzz targets and benchmarks of pipeline and pipeline/filters.
//
// Format:
//
//	## comment; blank lines are skipped
//	## mode: ddos            optional, before the first log line
//	# match HOST             the next line is a failure of HOST (as captured)
//	# miss                   the next line is no failure
//	# ignore                 a failregex matches but an ignoreregex vetoes it
//	# pending                the next line opens a multi-line failure
//	# same HOST              a failure line of an attempt of HOST already
//	                         counted (the filter's AttemptRules): no failure
//	# match HOST xN          an attempt's end line counting N failures
//	Mmm dd hh:mm:ss host prog[pid]: message
//
// File names: FILTER.log, or FILTER.MODE.log to run a mode (the part after
// the first dot). Log lines are parsed by receiver.ParseFileLine, as
// `sysban test` parses them.
package sample

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/receiver"
)

// Dir is where the samples are, relative to the repository root.
const Dir = "pipeline/filters/testdata"

// YearStart is the "now" the year of file lines is inferred from: fixed,
// so the samples read the same whatever the date.
func YearStart() time.Time { return time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC) }

// Line is one annotated log line.
type Line struct {
	No   int    // line number in the file
	Want string // "match HOST", "match HOST xN", "same HOST", "miss", "ignore" or "pending"
	Raw  string
	Msg  sysban.Message
}

// File is one parsed sample file.
type File struct {
	Path, Filter, Mode string
	Lines              []Line
}

// Paths returns the sample files in dir (dir/*.log), an error when there
// are none.
func Paths(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err == nil && len(paths) == 0 {
		err = fmt.Errorf("no %s/*.log", dir)
	}
	return paths, err
}

// Read parses the sample file at path.
func Read(path string) (*File, error) {
	base := strings.TrimSuffix(filepath.Base(path), ".log")
	fx := &File{Path: path, Filter: base}
	if i := strings.IndexByte(base, '.'); i >= 0 {
		fx.Filter, fx.Mode = base[:i], base[i+1:]
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	var want string
	for no := 1; sc.Scan(); no++ {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case strings.HasPrefix(line, "## mode:"):
			if len(fx.Lines) > 0 {
				return nil, fmt.Errorf("%s:%d: mode directive after the first log line", path, no)
			}
			fx.Mode = strings.TrimSpace(strings.TrimPrefix(line, "## mode:"))
			continue
		case strings.HasPrefix(line, "##"):
			continue
		case strings.HasPrefix(line, "#"):
			if want != "" {
				return nil, fmt.Errorf("%s:%d: two annotations in a row", path, no)
			}
			want = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			if want != "miss" && want != "ignore" && want != "pending" && !strings.HasPrefix(want, "match ") && !strings.HasPrefix(want, "same ") {
				return nil, fmt.Errorf("%s:%d: annotation %q: want match HOST, same HOST, miss, ignore or pending", path, no, want)
			}
			continue
		}
		if want == "" {
			return nil, fmt.Errorf("%s:%d: log line without an annotation before it", path, no)
		}
		fl := Line{No: no, Want: want, Raw: line}
		if err := receiver.ParseFileLine([]byte(line), YearStart(), &fl.Msg); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, no, err)
		}
		fx.Lines = append(fx.Lines, fl)
		want = ""
	}
	if want != "" {
		return nil, fmt.Errorf("%s: annotation at the end without a log line", path)
	}
	return fx, sc.Err()
}

// Annotation is the annotation a line's first match must carry: "miss"
// when there is none (matched false), else "ignore", "pending", "same HOST"
// (repeat: a line of an attempt already counted), "match HOST xN" (an
// end line counting count > 1 failures) or "match HOST".
func Annotation(matched, ignored, pending, repeat bool, count int, host string) string {
	switch {
	case !matched:
		return "miss"
	case ignored:
		return "ignore"
	case pending:
		return "pending"
	case repeat:
		return "same " + host
	case count > 1:
		return fmt.Sprintf("match %s x%d", host, count)
	}
	return "match " + host
}
