package device_test

import (
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"

	"pipeline/sink/moco/device"
	"pipeline/sink/moco/device/devicetest"
)

// The CPU plugin scripts/pjrt-cpu.sh installs loads and computes. CI installs it, so there a
// missing plugin fails instead of skipping.
func TestCPUPluginComputes(t *testing.T) {
	b := devicetest.OpenXLA(t)
	if !device.IsCPU(b) {
		t.Errorf("%s (%s) is not taken for a CPU", b.Name(), b.DeviceDescription(0))
	}
	got := MustExecOnce(b, func(x *Node) *Node { return ReduceAllSum(Mul(x, x)) }, []float32{1, 2, 3})
	if v := got.Value().(float32); v != 14 {
		t.Fatalf("sum of squares on %s: %v, want 14", b.Name(), v)
	}
}
