package monitor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Topology is how the CPUs this process may run on map onto physical cores. With SMT
// (hyper-threading) two logical CPUs share one core's execution units, so a CPU-bound pipeline
// gains far less from the second thread of a core than from another core: the scaling of
// `pipeline bench` over the workers, and the profile's prediction, should be read against
// PhysicalCores.
type Topology struct {
	LogicalCPUs   int `json:"logical_cpus"`
	PhysicalCores int `json:"physical_cores"` // 0: unknown (no sysfs topology)
}

// SMT reports whether some core runs more than one of the process's logical CPUs.
func (t Topology) SMT() bool { return t.PhysicalCores > 0 && t.PhysicalCores < t.LogicalCPUs }

// String says it for people: "16 logical CPUs on 8 physical cores".
func (t Topology) String() string {
	if t.PhysicalCores == 0 {
		return fmt.Sprintf("%d logical CPUs (physical cores unknown)", t.LogicalCPUs)
	}
	if !t.SMT() {
		return fmt.Sprintf("%d cores, one thread each", t.LogicalCPUs)
	}
	return fmt.Sprintf("%d logical CPUs on %d physical cores (SMT)", t.LogicalCPUs, t.PhysicalCores)
}

// MachineTopology is the topology of the CPUs in this process's affinity mask, read from
// Linux's sysfs.
func MachineTopology() Topology { return topologyOf(allowedCPUs(), "/sys/devices/system/cpu") }

// topologyOf counts the physical cores of cpus under the sysfs folder root: the distinct sets
// of thread siblings (thread_siblings_list), or where that file is missing the distinct
// (package, core) pairs. core_id alone is not unique in a package: on arm64 and RISC-V with a
// device tree it starts from 0 again in every cluster.
func topologyOf(cpus []int, root string) Topology {
	t := Topology{LogicalCPUs: len(cpus)}
	cores := map[string]bool{}
	for _, cpu := range cpus {
		dir := filepath.Join(root, fmt.Sprintf("cpu%d", cpu), "topology")
		if b, err := os.ReadFile(filepath.Join(dir, "thread_siblings_list")); err == nil {
			cores["siblings "+strings.TrimSpace(string(b))] = true
			continue
		}
		pkg, err1 := readInt(filepath.Join(dir, "physical_package_id"))
		core, err2 := readInt(filepath.Join(dir, "core_id"))
		if err1 != nil || err2 != nil {
			return t
		}
		cores[fmt.Sprintf("core %d/%d", pkg, core)] = true
	}
	t.PhysicalCores = len(cores)
	return t
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func firstCPUs(n int) []int {
	cpus := make([]int, n)
	for i := range cpus {
		cpus[i] = i
	}
	return cpus
}
