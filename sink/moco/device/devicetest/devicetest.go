// Package devicetest opens the backends the trainer's tests run on.
package devicetest

import (
	"errors"
	"os"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"pipeline/sink/moco/device"
)

// OpenXLA opens XLA with the plugin device.FindPlugin finds (scripts/pjrt-cpu.sh installs
// XLA's CPU one), for tests of the XLA path. Without one the test is skipped, except in CI
// (CI set), where scripts/deps.sh installs it and its absence is a failure.
func OpenXLA(t testing.TB) backends.Backend {
	t.Helper()
	c, err := device.Resolve(device.XLA, "")
	if errors.Is(err, device.ErrNoPlugin) && os.Getenv("CI") == "" {
		t.Skipf("no PJRT plugin (run scripts/pjrt-cpu.sh): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
