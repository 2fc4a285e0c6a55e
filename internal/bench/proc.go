package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoCPUTime is returned where the CPU time of another process cannot be read (no /proc).
var ErrNoCPUTime = errors.New("bench: the CPU time of another process can only be read from Linux's /proc")

// ErrExited is returned when a child process ended before it was asked to.
var ErrExited = errors.New("bench: process exited")

// CPUClock is a source of cumulative CPU time (user + system).
type CPUClock interface {
	CPUTime() (time.Duration, error)
}

// SelfCPU is the CPU time of the calling process, from getrusage(RUSAGE_SELF).
type SelfCPU struct{}

// CPUTime returns the process's user + system CPU time so far.
func (SelfCPU) CPUTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("bench: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// userHZ is the unit of /proc/PID/stat's times: USER_HZ, which Linux fixes at 100 for user space
// on every architecture Go supports (the kernel's own HZ may differ; /proc converts).
const userHZ = 100

// ParseProcStat returns utime + stime from the contents of /proc/PID/stat.
func ParseProcStat(stat []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces or ')': the fields after
	// the last ')' are fixed. utime and stime are fields 14 and 15, the 12th and 13th after it.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: malformed /proc stat: no ')'")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: malformed /proc stat: %d fields after the command name", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: malformed /proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / userHZ), nil
}

// ProcessCPU reads the CPU time of process pid from /proc.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("%w (%v)", ErrNoCPUTime, err)
		}
		return 0, err
	}
	return ParseProcStat(b)
}

// ProcessSpec describes a child process.
type ProcessSpec struct {
	// Name labels the process in errors.
	Name string
	Path string
	Args []string
	// Env is the child's whole environment: nothing else is inherited, so a benchmark's children
	// see only the cluster they belong to.
	Env map[string]string
	// Stdout receives the child's standard output (discarded when nil).
	Stdout io.Writer
}

// Process is a child process owned by its starter: Stop ends it and waits for it, and must be
// called on every path.
type Process struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailBuffer
	done   chan struct{}
	err    error // Wait's result, set before done is closed

	stopOnce sync.Once
}

// StartProcess starts the child. Its standard input is a pipe that stays open until Stop, so a
// child that watches it can tell its parent is gone; on Linux the child is also killed when the
// parent dies (PR_SET_PDEATHSIG).
func StartProcess(spec ProcessSpec) (*Process, error) {
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = make([]string, 0, len(spec.Env))
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		cmd.Env = append(cmd.Env, k+"="+spec.Env[k])
	}
	cmd.Stdout = spec.Stdout
	p := &Process{name: spec.Name, cmd: cmd, stderr: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	cmd.SysProcAttr = sysProcAttr()
	// A grandchild holding stderr open must not keep Wait (and so Stop) blocked.
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		stdin.Close()
		return nil, fmt.Errorf("bench: starting %s: %w", spec.Name, err)
	}
	// The waiter is owned by the Process: Stop waits for done.
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Name returns the process's label.
func (p *Process) Name() string { return p.name }

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been waited for.
func (p *Process) Done() <-chan struct{} { return p.done }

// CPUTime returns the process's CPU time so far, from /proc.
func (p *Process) CPUTime() (time.Duration, error) {
	select {
	case <-p.done:
		return 0, p.exitError()
	default:
	}
	return ProcessCPU(p.PID())
}

// exitError describes an exit: ErrExited with the status and the end of stderr.
func (p *Process) exitError() error {
	status := "status 0"
	if p.err != nil {
		status = p.err.Error()
	}
	return fmt.Errorf("%w: %s (%s); its stderr ends with:\n%s", ErrExited, p.name, status, p.StderrTail())
}

// Err returns why the process ended early, once Done is closed.
func (p *Process) Err() error { return p.exitError() }

// StderrTail returns the last few KiB the process wrote on stderr.
func (p *Process) StderrTail() string { return strings.TrimSpace(p.stderr.String()) }

// Stop asks the process to end (SIGTERM and closing its stdin), kills it if it has not exited
// after grace, and waits for it. It is idempotent and returns nil once the process is gone,
// whatever its exit status: a benchmark's workers are expected to be stopped.
func (p *Process) Stop(grace time.Duration) error {
	var err error
	p.stopOnce.Do(func() {
		p.stdin.Close()
		select {
		case <-p.done:
			return
		default:
		}
		if serr := p.cmd.Process.Signal(syscall.SIGTERM); serr != nil && !errors.Is(serr, os.ErrProcessDone) {
			err = serr
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		if kerr := p.cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
			err = errors.Join(err, kerr)
		}
		<-p.done
	})
	<-p.done
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
