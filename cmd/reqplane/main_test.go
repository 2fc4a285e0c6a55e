package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// The command's subcommands start servers and clients; every test must leave no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quickStartTestCommand returns the README's test command: the one line of the Quick start code
// block that runs `go test`.
func quickStartTestCommand(t *testing.T, readme string) string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no \"## Quick start\" section")
	}
	_, block, ok := strings.Cut(section, "```")
	if !ok {
		t.Fatal("the Quick start section has no code block")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("the Quick start code block is not closed")
	}
	var commands []string
	for line := range strings.Lines(block) {
		if line = strings.TrimSpace(line); strings.Contains(line, "go test") {
			commands = append(commands, line)
		}
	}
	if len(commands) != 1 {
		t.Fatalf("the Quick start block has %d go test lines, want exactly 1: %q", len(commands), commands)
	}
	return commands[0]
}

// TestCIRunsTheREADMETestCommand keeps .ci/run and the README in step: CI must run, verbatim, the
// command the README tells users to run.
func TestCIRunsTheREADMETestCommand(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := quickStartTestCommand(t, string(readme))

	script := filepath.Join(root, ".ci", "run")
	ci, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for line := range strings.Lines(string(ci)) {
		if strings.TrimSpace(line) == want {
			found = true
		}
	}
	if !found {
		t.Errorf(".ci/run does not run the README's test command verbatim: %q", want)
	}
	if !strings.Contains(string(ci), "must match README") {
		t.Error(`.ci/run lost its "must match README" comment`)
	}
	if fi, err := os.Stat(script); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf(".ci/run is not executable (stat: %v)", err)
	}
}

func TestQuickStartTestCommand(t *testing.T) {
	readme := "# x\n\n## Quick start\n```sh\ngo vet ./... && go test -race ./...\ngo run ./cmd/reqplane demo   # coming\n```\n"
	if got, want := quickStartTestCommand(t, readme), "go vet ./... && go test -race ./..."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
