package main

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes a child die with the harness, so an interrupted run
// leaves no server behind.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
