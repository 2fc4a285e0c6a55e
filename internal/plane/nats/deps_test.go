package nats

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoNATSServerDependency guards the dependency rule: the plane talks to NATS through
// nats.go only; nats-server is for natsembed, the command and tests.
func TestNoNATSServerDependency(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	const (
		pkg    = "github.com/reqplane/reqplane/internal/plane/nats"
		server = "github.com/nats-io/nats-server"
	)
	for _, tt := range []struct {
		pkg       string
		wantsDeps bool
	}{
		{pkg, false},
		// The check must see the server where it is, or it is blind.
		{"github.com/reqplane/reqplane/internal/natsembed", true},
	} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", tt.pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", tt.pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) == 0 || deps[len(deps)-1] != tt.pkg {
			t.Fatalf("go list -deps %s listed %d packages, not ending with the package", tt.pkg, len(deps))
		}
		found := false
		for _, d := range deps {
			if d == server+"/v2" || strings.HasPrefix(d, server+"/") {
				found = true
				if !tt.wantsDeps {
					t.Errorf("%s depends on %s", tt.pkg, d)
				}
			}
		}
		if tt.wantsDeps && !found {
			t.Errorf("%s shows no dependency on %s", tt.pkg, server)
		}
	}
}
