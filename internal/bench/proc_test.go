package bench

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

func shell(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("child CPU time comes from Linux's /proc")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	return sh
}

func TestProcessStop(t *testing.T) {
	sh := shell(t)
	tests := []struct {
		name   string
		script string
	}{
		{"ends on SIGTERM", `echo ready >&2; exec sleep 30`},
		{"ignores SIGTERM: killed after the grace", `trap "" TERM; echo ready >&2; while :; do sleep 1; done`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := StartProcess(ProcessSpec{Name: "sh", Path: sh, Args: []string{"-c", tc.script}, Env: map[string]string{"A": "1"}})
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(p.StderrTail(), "ready") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if _, err := p.CPUTime(); err != nil {
				t.Errorf("CPUTime of a running child: %v", err)
			}
			if err := p.Stop(200 * time.Millisecond); err != nil {
				t.Errorf("Stop: %v", err)
			}
			select {
			case <-p.Done():
			default:
				t.Fatal("Stop returned before the process was waited for")
			}
			if err := p.Stop(time.Second); err != nil {
				t.Errorf("second Stop: %v", err)
			}
			if _, err := p.CPUTime(); !errors.Is(err, ErrExited) {
				t.Errorf("CPUTime after the end: %v, want ErrExited", err)
			}
		})
	}
}

// A child that dies early reports its status and the end of its stderr.
func TestProcessEarlyExit(t *testing.T) {
	sh := shell(t)
	p, err := StartProcess(ProcessSpec{Name: "doomed worker", Path: sh, Args: []string{"-c", `echo "$A went wrong" >&2; exit 3`}, Env: map[string]string{"A": "something"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the child did not exit")
	}
	err = p.Err()
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "doomed worker") ||
		!strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "something went wrong") {
		t.Errorf("Err = %v", err)
	}
	if err := p.Stop(time.Second); err != nil {
		t.Errorf("Stop after exit: %v", err)
	}
}

func TestStartProcessMissingBinary(t *testing.T) {
	if _, err := StartProcess(ProcessSpec{Name: "nothing", Path: "/nonexistent/reqplane"}); err == nil {
		t.Fatal("started a missing binary")
	}
}

func TestSelfAndProcessCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	self, err := SelfCPU{}.CPUTime()
	if err != nil || self <= 0 {
		t.Fatalf("SelfCPU = %v, %v", self, err)
	}
	if _, err := ProcessCPU(os.Getpid()); err != nil {
		t.Fatalf("ProcessCPU(self): %v", err)
	}
	if _, err := ProcessCPU(1 << 30); !errors.Is(err, ErrNoCPUTime) {
		t.Errorf("ProcessCPU of no process: %v", err)
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 8}
	b.Write([]byte("0123"))
	b.Write([]byte("456789ab"))
	if got := b.String(); got != "456789ab" {
		t.Errorf("tail %q", got)
	}
}
