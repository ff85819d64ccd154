package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version, Commit and BuildDate are stamped by the release build
// (-ldflags "-X main.Version=1.2.0 -X main.Commit=... -X main.BuildDate=...");
// left empty, they come from the VCS information Go embeds in the binary.
var (
	Version   = "dev"
	Commit    = ""
	BuildDate = ""
)

// buildInfo is the version, commit and build date of this binary.
func buildInfo() (version, commit, date string) {
	version, commit, date = Version, Commit, BuildDate
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, commit, date
	}
	if version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version // go install ...@v1.2.0
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if commit == "" && rev != "" {
		commit = rev
		if len(commit) > 12 {
			commit = commit[:12]
		}
		if dirty {
			commit += "-dirty"
		}
	}
	if date == "" {
		date = at // the commit's time: builds of one commit say the same
	}
	return version, commit, date
}

func versionLine() string {
	v, c, d := buildInfo()
	if c == "" {
		c = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return fmt.Sprintf("ctibridge %s (commit %s, built %s, %s %s/%s)", v, c, d, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
