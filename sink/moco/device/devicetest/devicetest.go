// Package devicetest gives tests the XLA backend: XLA's CPU PJRT plugin, which
// scripts/pjrt-cpu.sh installs, or whatever plugin device.FindPlugin finds.
package devicetest

import (
	"errors"
	"os"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"pipeline/sink/moco/device"
)

// XLAPlugin is the PJRT plugin device.FindPlugin finds. Without one the test is skipped, except
// in CI (CI set), where scripts/deps.sh installs it and its absence is a failure.
func XLAPlugin(t testing.TB) string {
	t.Helper()
	c, err := device.Resolve(device.XLA, "")
	if errors.Is(err, device.ErrNoPlugin) && os.Getenv("CI") == "" {
		t.Skipf("no PJRT plugin (run scripts/pjrt-cpu.sh): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c.Plugin
}

// OpenXLA opens XLA with XLAPlugin's plugin.
func OpenXLA(t testing.TB) backends.Backend {
	t.Helper()
	b, err := device.Open(device.XLA, XLAPlugin(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
