//go:build !linux

package bench

import "syscall"

// sysProcAttr: outside Linux, children are ended by Stop and by their closed stdin only.
func sysProcAttr() *syscall.SysProcAttr { return nil }
