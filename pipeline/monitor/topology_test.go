package monitor

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fakeSysfs writes a sysfs cpu folder where cpu i sits on the given (package, core).
func fakeSysfs(t *testing.T, layout [][2]int) string {
	root := t.TempDir()
	for cpu, pc := range layout {
		dir := filepath.Join(root, fmt.Sprintf("cpu%d", cpu), "topology")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "physical_package_id"), []byte(fmt.Sprintf("%d\n", pc[0])), 0o644)
		os.WriteFile(filepath.Join(dir, "core_id"), []byte(fmt.Sprintf("%d\n", pc[1])), 0o644)
	}
	return root
}

func TestTopologyCountsPhysicalCores(t *testing.T) {
	// Two packages of two cores, two threads a core: cpu i and i+4 are siblings, as Linux
	// numbers them. Core ids repeat across packages.
	root := fakeSysfs(t, [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {0, 0}, {0, 1}, {1, 0}, {1, 1}})
	all := topologyOf([]int{0, 1, 2, 3, 4, 5, 6, 7}, root)
	if all != (Topology{LogicalCPUs: 8, PhysicalCores: 4}) || !all.SMT() {
		t.Fatalf("all CPUs: %+v (SMT %v)", all, all.SMT())
	}
	// A cpuset of one thread a core is not SMT.
	if half := topologyOf([]int{0, 1, 2, 3}, root); half != (Topology{LogicalCPUs: 4, PhysicalCores: 4}) || half.SMT() {
		t.Fatalf("one thread a core: %+v", half)
	}
	// Without topology files the core count is unknown, never guessed.
	if none := topologyOf([]int{0, 1, 9}, root); none.PhysicalCores != 0 || none.SMT() {
		t.Fatalf("missing cpu9: %+v", none)
	}
	if s := all.String(); s != "8 logical CPUs on 4 physical cores (SMT)" {
		t.Fatalf("String %q", s)
	}
}

func TestMachineTopologyCoversTheProcessCPUs(t *testing.T) {
	topo := MachineTopology()
	if topo.LogicalCPUs < 1 || topo.PhysicalCores > topo.LogicalCPUs {
		t.Fatalf("%+v", topo)
	}
	t.Log(topo)
}
