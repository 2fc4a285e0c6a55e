package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// repoRoot finds the module root: the nearest parent directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// envReaders are the functions that read the process environment.
var envReaders = map[string][]string{
	"os":      {"Getenv", "LookupEnv", "Environ", "ExpandEnv"},
	"syscall": {"Getenv", "Environ"},
}

// envReads returns "file:line: pkg.Func" for every call or reference to an environment reader in
// src, following renamed imports.
func envReads(fset *token.FileSet, file *ast.File) []string {
	local := map[string]string{} // local name -> import path, for the packages in envReaders
	for _, imp := range file.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		if err != nil || envReaders[path] == nil {
			continue
		}
		name := path
		if imp.Name != nil {
			name = imp.Name.Name
		}
		local[name] = path
	}
	var found []string
	ast.Inspect(file, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		id, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		path, ok := local[id.Name]
		if !ok {
			return true
		}
		for _, fn := range envReaders[path] {
			if sel.Sel.Name == fn {
				found = append(found, fset.Position(sel.Pos()).String()+": "+path+"."+fn)
			}
		}
		return true
	})
	return found
}

// TestNoOtherPackageReadsTheEnvironment guards the rule that only internal/config reads the
// environment, so every setting is typed, validated and shown by `reqplane config`.
func TestNoOtherPackageReadsTheEnvironment(t *testing.T) {
	root := repoRoot(t)
	self := filepath.Join(root, "internal", "config")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path == self || name == "testdata" || name == "vendor" ||
				(path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_"))) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			// A file another engineer is still writing must not hide the rest; the build reports it.
			t.Logf("skipping %s: %v", path, err)
			return nil
		}
		checked++
		for _, read := range envReads(fset, file) {
			rel, _ := filepath.Rel(root, read)
			t.Errorf("%s: only internal/config reads the environment; take a *config.Config instead", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checked %d files", checked)
}

func TestEnvReadsDetector(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want int
	}{
		{"getenv", `package p; import "os"; var _ = os.Getenv("X")`, 1},
		{"lookupenv and environ", `package p; import "os"; func f() { os.LookupEnv("X"); _ = os.Environ() }`, 2},
		{"renamed import", `package p; import sys "os"; var _ = sys.Getenv("X")`, 1},
		{"function value", `package p; import "os"; var f = os.LookupEnv`, 1},
		{"syscall", `package p; import "syscall"; var _, _ = syscall.Getenv("X")`, 1},
		{"expandenv", `package p; import "os"; var _ = os.ExpandEnv("$X")`, 1},
		{"other os calls", `package p; import "os"; var _ = os.Getpid()`, 0},
		{"local os shadow without import", `package p; type t struct{}; func (t) Getenv(string) string { return "" }; var os t; var _ = os.Getenv("X")`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, "x.go", tc.src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			if got := envReads(fset, file); len(got) != tc.want {
				t.Errorf("found %v, want %d", got, tc.want)
			}
		})
	}
}

// TestImportsOnlyStandardLibrary guards the dependency rule: config is imported by everything, so
// it must pull in nothing.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s; config imports only the standard library", name, path)
			}
		}
	}
}
