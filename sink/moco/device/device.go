// Package device opens the GoMLX backend the trainer runs on: XLA through a PJRT plugin found
// on disk (no downloads), or SimpleGo patched so that convnets can be trained on it.
package device

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// Backend names accepted by Open.
const (
	Auto = "auto" // XLA when a PJRT plugin is found, else SimpleGo
	XLA  = "xla"
	Go   = "go"
)

// cudaPluginGlobs are where jax's CUDA PJRT plugin lives when jax is installed with pip. They
// are searched only on a machine with an NVIDIA driver: the plugin cannot start without one.
var cudaPluginGlobs = []string{
	"/opt/torch/.venv/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"/opt/*/.venv/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"/usr/local/lib/python3*/*-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"/usr/lib/python3*/*-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
}

// cpuPluginPaths are where XLA's CPU PJRT plugin lives below a project root: .pjrt/ is where
// scripts/pjrt-cpu.sh installs it, .venv/ where `pip install lammps-jax-pjrt-cpu` puts it.
var cpuPluginPaths = []string{
	".pjrt/lammps_jax_pjrt_cpu/pjrt_c_api_cpu_plugin.so",
	".venv/lib/python3*/site-packages/lammps_jax_pjrt_cpu/pjrt_c_api_cpu_plugin.so",
}

// Choice is the backend a config resolves to: Kind is XLA or Go; Plugin is the PJRT plugin for
// XLA; Reason says why SimpleGo was chosen for `auto`.
type Choice struct {
	Kind, Plugin, Reason string
}

// String is the backend as the plan line and the summary show it.
func (c Choice) String() string {
	if c.Kind == XLA {
		return "xla (PJRT plugin " + c.Plugin + ")"
	}
	if c.Reason != "" {
		return "go (SimpleGo: " + c.Reason + ")"
	}
	return "go (SimpleGo)"
}

// Resolve decides which backend kind names. `auto` (or empty) is XLA with plugin, or with the
// plugin FindPlugin finds, and SimpleGo when there is none. `xla` without a plugin fails when
// none is found.
func Resolve(kind, plugin string) (Choice, error) {
	switch kind {
	case Go:
		return Choice{Kind: Go}, nil
	case XLA, Auto, "":
	default:
		return Choice{}, fmt.Errorf("unknown backend %q: want %q, %q or %q", kind, Auto, XLA, Go)
	}
	if plugin == "" {
		found, err := FindPlugin()
		if errors.Is(err, ErrNoPlugin) && kind != XLA {
			return Choice{Kind: Go, Reason: "no PJRT plugin found; scripts/pjrt-cpu.sh installs the CPU one"}, nil
		}
		if err != nil {
			return Choice{}, err
		}
		plugin = found
	}
	abs, err := filepath.Abs(plugin)
	if err != nil {
		return Choice{}, fmt.Errorf("xla plugin %q: %w", plugin, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return Choice{}, fmt.Errorf("xla plugin: %w (give `plugin:` the path of a PJRT plugin .so, e.g. the one scripts/pjrt-cpu.sh installs)", err)
	}
	return Choice{Kind: XLA, Plugin: abs}, nil
}

// Open returns the backend kind resolves to (Resolve). options are XLA plugin options, e.g.
// "tf32".
func Open(kind, plugin string, options ...string) (backends.Backend, error) {
	c, err := Resolve(kind, plugin)
	if err != nil {
		return nil, err
	}
	return c.Open(options...)
}

// Open starts the chosen backend.
func (c Choice) Open(options ...string) (backends.Backend, error) {
	if c.Kind == Go {
		// Sequential ops: SimpleGo's parallel executor deadlocked on 2 cores.
		b, err := simplego.New("ops_sequential")
		if err != nil {
			return nil, fmt.Errorf("simplego backend: %w", err)
		}
		return newWithPadReverse(b), nil
	}
	// An absolute plugin path never triggers GoMLX's plugin auto-install (downloads).
	return openXLA(strings.Join(append([]string{c.Plugin}, options...), ","))
}

// KindOf tells which kind of backend b is: XLA, or Go for SimpleGo (wrapped or not).
func KindOf(b backends.Backend) string {
	if strings.HasPrefix(b.Name(), "SimpleGo") || b.Name() == Go {
		return Go
	}
	return XLA
}

// IsCPU tells whether b computes on the host's CPU: SimpleGo, or XLA with a CPU plugin.
func IsCPU(b backends.Backend) bool {
	return KindOf(b) == Go || strings.Contains(strings.ToLower(b.DeviceDescription(0)), "cpu")
}

// ErrNoPlugin says no PJRT plugin was found on this machine.
var ErrNoPlugin = errors.New("no PJRT plugin found")

// FindPlugin looks for a PJRT plugin in $PJRT_PLUGIN_LIBRARY_PATH (files named pjrt_c_api_*.so
// or *_plugin.so, or the path itself), then for jax's CUDA plugin when an NVIDIA driver is
// loaded, then for XLA's CPU plugin below the working directory, the executable's directory
// or one of their parents (the repository root when run from a package or from bin/).
func FindPlugin() (string, error) {
	var searched []string
	for _, dir := range filepath.SplitList(os.Getenv("PJRT_PLUGIN_LIBRARY_PATH")) {
		if dir == "" {
			continue
		}
		searched = append(searched, dir)
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			return dir, nil
		}
		for _, pattern := range []string{"pjrt_c_api_*.so", "*_plugin.so", "pjrt-plugin-*.so"} {
			if m, _ := filepath.Glob(filepath.Join(dir, pattern)); len(m) > 0 {
				sort.Strings(m)
				return m[0], nil
			}
		}
	}
	if hasNvidiaDriver() {
		for _, pattern := range cudaPluginGlobs {
			searched = append(searched, pattern)
			if m, _ := filepath.Glob(pattern); len(m) > 0 {
				sort.Strings(m)
				return m[len(m)-1], nil // the newest CUDA major version sorts last
			}
		}
	}
	for _, root := range projectRoots() {
		for _, rel := range cpuPluginPaths {
			pattern := filepath.Join(root, rel)
			searched = append(searched, pattern)
			if m, _ := filepath.Glob(pattern); len(m) > 0 {
				sort.Strings(m)
				return m[len(m)-1], nil
			}
		}
	}
	return "", fmt.Errorf("%w: set `plugin:` to a PJRT plugin .so or PJRT_PLUGIN_LIBRARY_PATH, or run scripts/pjrt-cpu.sh; "+
		"searched %s; on a machine without one use `backend: go`", ErrNoPlugin, strings.Join(searched, ", "))
}

// projectRoots are the working directory, the executable's directory and their parents,
// nearest first, each once.
func projectRoots() []string {
	var roots []string
	seen := map[string]bool{}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			if !seen[dir] {
				seen[dir] = true
				roots = append(roots, dir)
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return roots
}

// hasNvidiaDriver tells whether NVIDIA device files exist (a CUDA plugin can start), the test
// go-xla itself uses.
func hasNvidiaDriver() bool {
	m, _ := filepath.Glob("/dev/nvidia*")
	return len(m) > 0
}
