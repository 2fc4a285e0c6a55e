package bench

import "syscall"

// sysProcAttr kills the child with SIGKILL when the bench process dies, so that no worker outlives
// a crashed or killed benchmark. (Linux ties this to the thread that started the child; the Go
// runtime does not end its threads while the process runs.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
