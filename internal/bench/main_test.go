package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// Run, the gRPC server and client and Process start goroutines: none may outlive a test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
