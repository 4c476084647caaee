package device

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// auto is XLA with the plugin found below a parent of the working directory (where
// scripts/pjrt-cpu.sh installs it), SimpleGo when none is found, and xla then fails.
func TestResolveFindsTheProjectsCPUPluginOrFallsBack(t *testing.T) {
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", "")
	root := t.TempDir()
	work := filepath.Join(root, "sink", "moco")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)
	if _, err := FindPlugin(); err == nil {
		t.Skip("a PJRT plugin is installed beside the test binary")
	}
	c, err := Resolve(Auto, "")
	if err != nil || c.Kind != Go || !strings.Contains(c.String(), "no PJRT plugin found") {
		t.Fatalf("auto without a plugin: %v, %v", c, err)
	}
	if _, err := Resolve(XLA, ""); !errors.Is(err, ErrNoPlugin) {
		t.Fatalf("xla without a plugin: %v", err)
	}

	plugin := filepath.Join(root, cpuPluginPaths[0])
	if err := os.MkdirAll(filepath.Dir(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plugin, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{Auto, "", XLA} {
		c, err := Resolve(kind, "")
		if err != nil || c.Kind != XLA || c.Plugin != plugin {
			t.Errorf("%q with %s installed: %+v, %v", kind, plugin, c, err)
		}
	}
	if c, err := Resolve(Go, ""); err != nil || c.Kind != Go {
		t.Errorf("go: %+v, %v", c, err)
	}
	if _, err := Resolve("tpu", ""); err == nil {
		t.Error("unknown backend accepted")
	}
}
