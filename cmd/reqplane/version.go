package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCmd(e env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print reqplane's version and the Go version it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, ok := e.buildInfo()
			if !ok {
				info = nil
			}
			return writeVersion(cmd.OutOrStdout(), describeBuild(info))
		},
	}
}

// buildDescription is what `reqplane version` reports.
type buildDescription struct {
	version    string // module version, else "devel"
	revision   string // VCS revision, "" if not stamped
	commitTime string
	modified   bool
	goVersion  string
	platform   string
}

// describeBuild reads the build information; nil (a binary without it) still yields the Go
// version and platform of the running binary.
func describeBuild(info *debug.BuildInfo) buildDescription {
	d := buildDescription{
		version:   "devel",
		goVersion: runtime.Version(),
		platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if info == nil {
		return d
	}
	// "(devel)" is what the go command stamps for a build of the main module without a version.
	if v := info.Main.Version; v != "" && v != "(devel)" {
		d.version = v
	}
	if info.GoVersion != "" {
		d.goVersion = info.GoVersion
	}
	goos, goarch := runtime.GOOS, runtime.GOARCH
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			d.revision = s.Value
		case "vcs.time":
			d.commitTime = s.Value
		case "vcs.modified":
			d.modified = s.Value == "true"
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	d.platform = goos + "/" + goarch
	return d
}

func writeVersion(w io.Writer, d buildDescription) error {
	version := d.version
	if version == "devel" && d.revision != "" {
		// No module version: the revision is the most precise name of this build.
		version = "devel-" + shortRevision(d.revision)
	}
	if _, err := fmt.Fprintf(w, "reqplane %s\n", version); err != nil {
		return err
	}
	if d.revision != "" {
		modified := ""
		if d.modified {
			modified = " (modified)"
		}
		if _, err := fmt.Fprintf(w, "revision %s%s\n", d.revision, modified); err != nil {
			return err
		}
	}
	if d.commitTime != "" {
		if _, err := fmt.Fprintf(w, "commit   %s\n", d.commitTime); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "go       %s %s\n", d.goVersion, d.platform)
	return err
}

func shortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
