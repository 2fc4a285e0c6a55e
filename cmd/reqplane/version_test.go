package main

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestVersion(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	here := runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"module version", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"},
			Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"}}}, true,
			"reqplane v1.2.3\ngo       go1.26.0 linux/arm64\n"},
		{"devel with vcs", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: "2025-11-27T06:52:00Z"},
				{Key: "vcs.modified", Value: "true"}}}, true,
			"reqplane devel-0123456789ab\nrevision " + rev + " (modified)\ncommit   2025-11-27T06:52:00Z\ngo       go1.26.0 " + here + "\n"},
		{"pseudo-version and clean vcs", &debug.BuildInfo{GoVersion: "go1.26.0",
			Main:     debug.Module{Version: "v0.0.0-20251127065200-0123456789ab"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}}, true,
			"reqplane v0.0.0-20251127065200-0123456789ab\nrevision " + rev + "\ngo       go1.26.0 " + here + "\n"},
		{"devel without vcs", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}, true,
			"reqplane devel\ngo       go1.26.0 " + here + "\n"},
		{"no build info", nil, false, "reqplane devel\ngo       " + runtime.Version() + " " + here + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, stdout, stderr := testEnv(nil)
			e.buildInfo = func() (*debug.BuildInfo, bool) { return tc.info, tc.ok }
			if code := run(context.Background(), []string{"version"}, e); code != 0 {
				t.Fatalf("exit code %d, stderr %q", code, stderr)
			}
			if got := stdout.String(); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestVersionOfThisBinary runs against the test binary's real build info: it must name a version
// and the Go toolchain that built it.
func TestVersionOfThisBinary(t *testing.T) {
	e, stdout, _ := testEnv(nil)
	e.buildInfo = debug.ReadBuildInfo
	if code := run(context.Background(), []string{"version"}, e); code != 0 {
		t.Fatal("version failed")
	}
	if !bytes.HasPrefix(stdout.Bytes(), []byte("reqplane ")) || !bytes.Contains(stdout.Bytes(), []byte(runtime.Version())) {
		t.Errorf("version output %q lacks the version line or %s", stdout, runtime.Version())
	}
}
