package codec

import (
	"testing"

	"go.uber.org/goleak"
)

// Some tests run loopback servers and concurrent writers; none may leave a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
