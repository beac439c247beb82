//go:build unix

package integration

import (
	"os/exec"
	"syscall"
)

// ownGroup makes cmd's process the leader of a process group of its own,
// which the processes it forks join, so that killGroup can end them.
func ownGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// killGroup kills what is left of the process group of a function process
// that has exited: the children it forked, which a Lambda execution
// environment does not outlive either.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
