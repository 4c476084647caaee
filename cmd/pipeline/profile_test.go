package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/monitor"
)

// syntheticConfig writes a small config on the synthetic source: no files, cheap views.
func syntheticConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "synthetic.yaml")
	yaml := `source:
  synthetic: {count: 64, width: 96, height: 72}
epochs: 100000
seed: 1
views: {recipe: mocov2, size: 48}
batch: {size: 8}
workers: {decode: 1, augment: 1}
memory_budget: 256MiB
`
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCLI(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := runMain(args, &stdout, &stderr); code != 0 {
		t.Fatalf("pipeline %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String(), stderr.String()
}

func TestProfileJSONAndFiles(t *testing.T) {
	dir := t.TempDir()
	cpu, tr, plot := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "run.trace"), filepath.Join(dir, "p.png")
	out, _ := runCLI(t, "profile", syntheticConfig(t), "--duration", "1s", "--interval", "100ms", "--json",
		"--cpuprofile", cpu, "--trace", tr, "--plot", plot)
	var rep struct {
		Stages []struct {
			Name                   string
			ItemsPerS              float64 `json:"items_per_s"`
			Busy, Starved, Blocked float64
		}
		Ops []struct {
			Name  string
			Calls int64
		}
		Bottleneck       string
		SuggestedWorkers map[string]int `json:"suggested_workers"`
		Samples          int64
		Timeline         []monitor.Sample
		Topology         monitor.Topology
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	var names []string
	for _, s := range rep.Stages {
		names = append(names, s.Name)
		if s.Busy < 0 || s.Starved < 0 || s.Blocked < 0 || s.Busy+s.Starved+s.Blocked > 1.05 {
			t.Fatalf("stage %s: busy %.2f starved %.2f blocked %.2f are not fractions of its time", s.Name, s.Busy, s.Starved, s.Blocked)
		}
	}
	if strings.Join(names, ",") != "read,decode,augment,batch,sink" {
		t.Fatalf("stages %v", names)
	}
	if rep.Samples == 0 || rep.Stages[2].ItemsPerS <= 0 || !strings.Contains(strings.Join(names, ","), rep.Bottleneck) || rep.Bottleneck == "" {
		t.Fatalf("samples %d, bottleneck %q, stages %+v", rep.Samples, rep.Bottleneck, rep.Stages)
	}
	if rep.SuggestedWorkers["decode"] < 1 || rep.SuggestedWorkers["augment"] < 1 || rep.SuggestedWorkers["batch"] != 1 {
		t.Fatalf("suggested workers %v", rep.SuggestedWorkers)
	}
	if len(rep.Ops) == 0 || rep.Ops[0].Name != "random_resized_crop" || rep.Ops[0].Calls < 2*rep.Samples {
		t.Fatalf("ops %+v for %d samples", rep.Ops, rep.Samples)
	}
	if rep.Topology != monitor.MachineTopology() || rep.Topology.LogicalCPUs < 1 {
		t.Fatalf("topology %+v, want this machine's %+v", rep.Topology, monitor.MachineTopology())
	}
	if len(rep.Timeline) < 5 {
		t.Fatalf("%d timeline samples in 1s at 100ms", len(rep.Timeline))
	}
	checkCPUProfile(t, cpu)
	checkTrace(t, tr)
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cfg, err := png.DecodeConfig(f); err != nil || cfg.Width < 600 {
		t.Fatalf("plot: %+v %v", cfg, err)
	}
}

// checkCPUProfile: a pprof file is a gzipped protocol buffer; where the go tool is at hand,
// pprof itself must read it and find samples.
func checkCPUProfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("cpu profile is not gzipped: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil || len(raw) < 100 {
		t.Fatalf("cpu profile: %d bytes, %v", len(raw), err)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return
	}
	out, err := exec.Command(gobin, "tool", "pprof", "-top", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "flat") {
		t.Fatalf("go tool pprof cannot read the profile: %v\n%s", err, out)
	}
}

// checkTrace: an execution trace starts with its "go 1.N trace" header.
func checkTrace(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head, err := bufio.NewReader(f).Peek(16)
	if err != nil || !bytes.HasPrefix(head, []byte("go 1.")) || !bytes.Contains(head, []byte("trace")) {
		t.Fatalf("not an execution trace: %q %v", head, err)
	}
	if fi, _ := f.Stat(); fi.Size() < 1000 {
		t.Fatalf("trace of %d bytes", fi.Size())
	}
}

func TestProfileTextAndIsolatedStage(t *testing.T) {
	cfg := syntheticConfig(t)
	out, _ := runCLI(t, "profile", cfg, "--duration", "500ms")
	for _, want := range []string{"stage  workers  items/s", "augment op", "bottleneck: ", "suggested workers for", "try: --set workers.decode="} {
		if !strings.Contains(out, want) {
			t.Fatalf("profile output lacks %q:\n%s", want, out)
		}
	}
	out, _ = runCLI(t, "profile", cfg, "--duration", "500ms", "--stage", "decode", "--cache", "8", "--json")
	var rep struct {
		Isolated string
		Stages   []struct{ Name string }
		Samples  int64
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Isolated != "decode" || len(rep.Stages) != 3 || rep.Stages[1].Name != "decode" || rep.Samples == 0 {
		t.Fatalf("isolated decode: %+v", rep)
	}
}

func TestProfileRejectsBadFlags(t *testing.T) {
	cfg := syntheticConfig(t)
	for _, args := range [][]string{
		{"profile", cfg, "--stage", "batch"},
		{"profile", cfg, "--sink", "gpu"},
		{"profile", cfg, "--duration", "0s"},
	} {
		var stdout, stderr bytes.Buffer
		if code := runMain(args, &stdout, &stderr); code != 2 {
			t.Fatalf("%v: exit %d, want 2 (usage)\n%s", args, code, stderr.String())
		}
	}
}

// A profile in which no sample went through (every shard missing) is an error naming the
// shard, not a table of zeros, a bottleneck and a suggested split with exit status 0.
func TestProfileWithNoSampleFails(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "train-000000.tar")
	cfg := filepath.Join(dir, "missing.yaml")
	yaml := "source: {shards: " + missing + "}\nviews: {recipe: mocov2, size: 48}\nbatch: {size: 8}\nmemory_budget: 256MiB\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := runMain([]string{"profile", cfg, "--duration", "5s", "--json"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), missing) || !strings.Contains(stderr.String(), "missing_shard") {
		t.Fatalf("exit %d, want 1 and an error naming the missing shard; stdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
}

// A picture that cannot be written (its folder is missing) fails --plot, but the report the
// run measured is still written, not thrown away; a run shorter than the monitor's first tick
// has no timeline, and its picture is drawn without one.
func TestProfilePlotErrorStillReports(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "one.yaml")
	yaml := "source:\n  synthetic: {count: 1, width: 96, height: 72}\nepochs: 1\nviews: {recipe: mocov2, size: 48}\nbatch: {size: 8}\nmemory_budget: 256MiB\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	plot := filepath.Join(t.TempDir(), "p.png")
	runCLI(t, "profile", cfg, "--interval", "1h", "--json", "--plot", plot)
	if f, err := os.Open(plot); err != nil {
		t.Fatal(err)
	} else if c, err := png.DecodeConfig(f); f.Close() != nil || err != nil || c.Width < 600 {
		t.Fatalf("picture without a timeline: %+v %v", c, err)
	}
	var stdout, stderr bytes.Buffer
	code := runMain([]string{"profile", cfg, "--interval", "1h", "--json", "--plot", filepath.Join(t.TempDir(), "no", "p.png")}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "plot") {
		t.Fatalf("exit %d, want 1 and a plot error\n%s", code, stderr.String())
	}
	var rep struct {
		Samples    int64
		Bottleneck string
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Samples != 1 || rep.Bottleneck == "" {
		t.Fatalf("no report for the 1-sample run (%v): %q", err, stdout.String())
	}
}
