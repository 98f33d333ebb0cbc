package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at build time by scripts/package and the Containerfile with
// -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
// Builds without them (go build, go install) fall back to what the
// toolchain recorded from version control.
var (
	version = ""
	commit  = ""
	date    = ""
)

func cmdVersion(_ []string, stdout, _ io.Writer) int {
	c, d := buildVCS()
	fmt.Fprintf(stdout, "sysban %s\ncommit %s\nbuilt  %s\ngo     %s %s/%s\n", Version(), c, d, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}

// Version is the build's version: the -X value, else the module version or
// VCS revision the toolchain recorded, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
	}
	if c, _ := buildVCS(); c != "unknown" {
		return "devel-" + c[:min(12, len(c))]
	}
	return "devel"
}

// buildVCS is the commit the binary was built from and when: the -X
// values, else the vcs.revision and vcs.time the go command records when it
// builds inside a checkout (a "+dirty" suffix when the tree had changes),
// else "unknown".
func buildVCS() (rev, when string) {
	rev, when = commit, date
	if bi, ok := debug.ReadBuildInfo(); ok {
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.time":
				if when == "" {
					when = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && commit == "" && rev != "" {
			rev += "+dirty"
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	if when == "" {
		when = "unknown"
	}
	return rev, when
}
