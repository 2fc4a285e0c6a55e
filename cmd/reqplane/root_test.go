package main

import (
	"bytes"
	"context"
	"net/netip"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/reqplane/reqplane/internal/config"
)

// testEnv is a process with the given environment variables on a fake machine whose only
// non-loopback address is 10.0.0.5, so results never depend on the machine running the test.
func testEnv(vars map[string]string) (e env, stdout, stderr *bytes.Buffer) {
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	opts := config.Options{Interfaces: func() ([]config.Interface, error) {
		return []config.Interface{
			{Name: "lo", Up: true, Loopback: true, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
			{Name: "eth0", Up: true, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}},
		}, nil
	}}
	lookup := func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
	return env{
		stdin:      strings.NewReader(""),
		stdout:     stdout,
		stderr:     stderr,
		loadConfig: func() (*config.Config, error) { return opts.Load(lookup) },
		buildInfo: func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/reqplane/reqplane", Version: "v0.1.0"}}, true
		},
	}, stdout, stderr
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // a part of stdout
		wantStderr string // stderr exactly
	}{
		{"no args prints help", []string{}, 0, "Available Commands:", ""},
		{"nil args are no args, not os.Args", nil, 0, "Available Commands:", ""},
		{"help", []string{"help"}, 0, "reqplane config", ""},
		{"--help", []string{"--help"}, 0, "Usage:", ""},
		{"unknown command", []string{"frobnicate"}, 1, "",
			"reqplane: unknown command \"frobnicate\" for \"reqplane\"\n"},
		{"unknown flag", []string{"config", "--yaml"}, 1, "", "reqplane: unknown flag: --yaml\n"},
		{"extra argument", []string{"version", "now"}, 1, "",
			"reqplane: unknown command \"now\" for \"reqplane version\"\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, stdout, stderr := testEnv(nil)
			if code := run(context.Background(), tc.args, e); code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tc.wantStdout)
			}
			if stderr.String() != tc.wantStderr {
				t.Errorf("stderr %q, want %q", stderr, tc.wantStderr)
			}
		})
	}
}

// TestSubcommands checks the list every new subcommand joins: unique names, documented, runnable.
func TestSubcommands(t *testing.T) {
	e, _, _ := testEnv(nil)
	root := newRootCmd(e)
	seen := map[string]bool{}
	for _, newCmd := range subcommands() {
		cmd := newCmd(e)
		name := cmd.Name()
		if seen[name] {
			t.Errorf("subcommand %q listed twice", name)
		}
		seen[name] = true
		if cmd.Short == "" {
			t.Errorf("subcommand %q has no Short help", name)
		}
		if cmd.RunE == nil {
			t.Errorf("subcommand %q has no RunE (errors must reach run, not os.Exit)", name)
		}
		if found, _, err := root.Find([]string{name}); err != nil || found.Name() != name {
			t.Errorf("root does not route %q: %v", name, err)
		}
	}
	if !root.SilenceErrors || !root.SilenceUsage {
		t.Error("root must silence cobra's error and usage printing; run prints errors once")
	}
}
