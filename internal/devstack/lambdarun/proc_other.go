//go:build !unix

package lambdarun

import (
	"os"
	"os/exec"
)

func setProcessGroup(*exec.Cmd) {}

// terminate: without process groups or SIGTERM, an interrupt is the closest
// graceful request; kill follows after the grace period as on unix.
func terminate(cmd *exec.Cmd) error { return cmd.Process.Signal(os.Interrupt) }

func kill(cmd *exec.Cmd) error { return cmd.Process.Kill() }
