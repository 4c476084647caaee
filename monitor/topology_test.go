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

// On arm64 and RISC-V machines described by a device tree, Linux numbers core_id from 0 in
// every cluster and gives all clusters one physical_package_id (drivers/base/arch_topology.c,
// parse_cluster): two clusters of four cores without SMT repeat (package, core). The cores are
// the distinct thread-sibling sets, as the kernel itself groups them.
func TestTopologyClustersRepeatingCoreIDsAreNotSMT(t *testing.T) {
	root := fakeSysfs(t, [][2]int{{0, 0}, {0, 1}, {0, 2}, {0, 3}, {0, 0}, {0, 1}, {0, 2}, {0, 3}})
	for cpu := range 8 {
		dir := filepath.Join(root, fmt.Sprintf("cpu%d", cpu), "topology")
		os.WriteFile(filepath.Join(dir, "cluster_id"), []byte(fmt.Sprintf("%d\n", cpu/4)), 0o644)
		os.WriteFile(filepath.Join(dir, "thread_siblings_list"), []byte(fmt.Sprintf("%d\n", cpu)), 0o644)
	}
	topo := topologyOf([]int{0, 1, 2, 3, 4, 5, 6, 7}, root)
	if topo != (Topology{LogicalCPUs: 8, PhysicalCores: 8}) || topo.SMT() {
		t.Fatalf("two clusters of four single-thread cores: %+v (SMT %v), want 8 cores, no SMT", topo, topo.SMT())
	}
	// With SMT the siblings are listed together: cpu i and i+4 share a core.
	for cpu := range 8 {
		dir := filepath.Join(root, fmt.Sprintf("cpu%d", cpu), "topology")
		os.WriteFile(filepath.Join(dir, "thread_siblings_list"), []byte(fmt.Sprintf("%d,%d\n", cpu%4, cpu%4+4)), 0o644)
	}
	if topo := topologyOf([]int{0, 1, 2, 3, 4, 5, 6, 7}, root); topo != (Topology{LogicalCPUs: 8, PhysicalCores: 4}) || !topo.SMT() {
		t.Fatalf("siblings listed in pairs: %+v, want 4 cores (SMT)", topo)
	}
}
