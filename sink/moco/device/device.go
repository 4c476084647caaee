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
	XLA = "xla"
	Go  = "go"
)

// pluginGlobs are where a PJRT plugin usually lives when jax is installed with pip.
var pluginGlobs = []string{
	"/opt/torch/.venv/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"/opt/*/.venv/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"/usr/local/lib/python3*/*-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"/usr/lib/python3*/*-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
}

// Open returns the backend named kind. For XLA, plugin is the path of a PJRT plugin (.so);
// empty means search PJRT_PLUGIN_LIBRARY_PATH and the usual Python site-packages.
// options are XLA plugin options, e.g. "tf32".
func Open(kind, plugin string, options ...string) (backends.Backend, error) {
	switch kind {
	case Go, "":
		// Sequential ops: SimpleGo's parallel executor deadlocked on 2 cores.
		b, err := simplego.New("ops_sequential")
		if err != nil {
			return nil, fmt.Errorf("simplego backend: %w", err)
		}
		return newWithPadReverse(b), nil
	case XLA:
		if plugin == "" {
			found, err := FindPlugin()
			if err != nil {
				return nil, err
			}
			plugin = found
		}
		abs, err := filepath.Abs(plugin)
		if err != nil {
			return nil, fmt.Errorf("xla plugin %q: %w", plugin, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("xla plugin: %w (give `plugin:` the path of a PJRT plugin .so, e.g. jax's xla_cuda_plugin.so)", err)
		}
		// An absolute plugin path never triggers GoMLX's plugin auto-install (downloads).
		return openXLA(strings.Join(append([]string{abs}, options...), ","))
	default:
		return nil, fmt.Errorf("unknown backend %q: want %q or %q", kind, XLA, Go)
	}
}

// ErrNoPlugin says no PJRT plugin was found on this machine.
var ErrNoPlugin = errors.New("no PJRT plugin found")

// FindPlugin looks for a PJRT plugin in $PJRT_PLUGIN_LIBRARY_PATH (files named pjrt_c_api_*.so
// or *_plugin.so, or the path itself) and in the usual jax site-packages folders.
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
	for _, pattern := range pluginGlobs {
		searched = append(searched, pattern)
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			sort.Strings(m)
			return m[len(m)-1], nil // the newest CUDA major version sorts last
		}
	}
	return "", fmt.Errorf("%w: set `plugin:` to a PJRT plugin .so or PJRT_PLUGIN_LIBRARY_PATH; searched %s; "+
		"on a machine without one use `backend: go`", ErrNoPlugin, strings.Join(searched, ", "))
}
