//go:build unix

package lambdarun

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the function in its own process group so that a timeout
// or Close also ends any child processes it started, as tearing down a Lambda
// execution environment does.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func terminate(cmd *exec.Cmd) error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

func kill(cmd *exec.Cmd) error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
