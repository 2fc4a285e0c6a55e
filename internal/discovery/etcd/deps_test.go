package etcd

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const (
	module     = "github.com/reqplane/reqplane"
	etcdServer = "go.etcd.io/etcd/server/v3"
)

// mayImportServer lists the packages allowed to depend on the etcd server: the command, the
// embedded server itself and test harnesses (DEVELOPERS.md, dependency rules).
var mayImportServer = []string{
	module + "/cmd",
	module + "/internal/discovery/etcdembed",
	module + "/internal/testcluster",
}

// goListDeps runs `go list -deps` on the patterns and returns, per listed root package, its
// dependency import paths. -e keeps a half-written package elsewhere in the module from
// failing this test; its errors are not ours to report here.
func goListDeps(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-f", "{{.ImportPath}} {{join .Deps \" \"}}"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	deps := make(map[string][]string)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 {
			deps[fields[0]] = fields[1:]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return deps
}

func TestNoEtcdServerDependency(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	all := goListDeps(t, module+"/...")
	if _, ok := all[module+"/internal/discovery/etcd"]; !ok {
		t.Fatalf("go list did not list this package; got %d packages", len(all))
	}
	// The check must be able to see the server where it is: in etcdembed.
	if !dependsOnServer(all[module+"/internal/discovery/etcdembed"]) {
		t.Fatal("etcdembed shows no dependency on the etcd server: the check is blind")
	}
	for pkg, deps := range all {
		if !allowed(pkg) && dependsOnServer(deps) {
			t.Errorf("%s depends on %s", pkg, etcdServer)
		}
	}
}

// TestDiscoveryTypesStdlibOnly checks that the discovery types stay light: the standard library
// and the wire codec (whose serde-exact JSON string writer the records share) only.
func TestDiscoveryTypesStdlibOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	list := func(pkg string) []string {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		return strings.Fields(string(out))
	}
	ok := map[string]bool{module + "/internal/discovery": true}
	for _, p := range list(module + "/internal/codec") {
		ok[p] = true
	}
	for _, p := range list(module + "/internal/discovery") {
		if !ok[p] {
			t.Errorf("internal/discovery depends on %s", p)
		}
	}
}

func allowed(pkg string) bool {
	for _, p := range mayImportServer {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

func dependsOnServer(deps []string) bool {
	for _, d := range deps {
		if d == etcdServer || strings.HasPrefix(d, etcdServer+"/") {
			return true
		}
	}
	return false
}
