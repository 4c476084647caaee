package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/monitor"
	"pipeline/stages/source"
)

func TestRunMetricsAndProgress(t *testing.T) {
	metrics := filepath.Join(t.TempDir(), "metrics.jsonl")
	_, stderr := runCLI(t, "run", syntheticConfig(t), "--set", "epochs=40", "--metrics", metrics,
		"--interval", "50ms", "--progress", "bar")
	if !strings.Contains(stderr, "\r") || !strings.Contains(stderr, "samples/s") || !strings.Contains(stderr, "bottleneck ") {
		t.Fatalf("no progress line:\n%q", stderr)
	}
	if !strings.Contains(stderr, "emitted 2560 in 320 batches") {
		t.Fatalf("summary: %s", stderr)
	}
	f, err := os.Open(metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []monitor.Sample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s monitor.Sample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("metrics line %d is not JSON: %v: %s", len(lines)+1, err, sc.Text())
		}
		lines = append(lines, s)
	}
	if len(lines) < 2 {
		t.Fatalf("%d metrics lines", len(lines))
	}
	for i, s := range lines {
		if len(s.Stages) != 5 || s.Bottleneck == "" || s.At <= 0 {
			t.Fatalf("metrics line %d: %+v", i+1, s)
		}
		if i > 0 && (s.At <= lines[i-1].At || s.Stages[0].Total < lines[i-1].Stages[0].Total) {
			t.Fatalf("metrics lines %d and %d go backwards", i, i+1)
		}
	}
}

func TestProgressLine(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, "bar", 1)
	p.update(monitor.Sample{Bottleneck: "augment", MemoryUsed: 3 << 20, Stages: []monitor.StageSample{
		{Name: "read", ItemsPerS: 410, Total: 1000},
		{Name: "batch", ItemsPerS: 400, Total: 960},
		{Name: "sink", ItemsPerS: 12.5, Total: 30},
	}})
	p.finish()
	line := buf.String()
	for _, want := range []string{"\r", "960 samples", "400 samples/s", "sink  12.5 batches/s", "bottleneck augment", "mem 3MiB", "\n"} {
		if !strings.Contains(line, want) {
			t.Fatalf("progress line %q lacks %q", line, want)
		}
	}
	// Epoch and ETA come from the positions of the batches the sink accepted: batches of 100,
	// an epoch of 250 samples (the third batch crosses into epoch 1), 3 epochs.
	buf.Reset()
	p = newProgress(&buf, "bar", 3)
	for _, pos := range []source.Position{{Epoch: 0, Offset: 100}, {Epoch: 0, Offset: 200}, {Epoch: 1, Offset: 50}} {
		p.delivered(pos)
	}
	p.update(monitor.Sample{Stages: []monitor.StageSample{{Name: "batch", ItemsPerS: 90, Total: 300}, {Name: "sink"}}})
	// 750 samples in all, 300 done: 450 left at 90 a second.
	if line := buf.String(); !strings.Contains(line, "epoch 2/3") || !strings.Contains(line, "ETA 5s") {
		t.Fatalf("progress line %q lacks the epoch or the ETA", line)
	}
	buf.Reset()
	off := newProgress(&buf, "off", 1)
	off.update(monitor.Sample{Stages: []monitor.StageSample{{Name: "batch"}}})
	off.finish()
	if buf.Len() != 0 {
		t.Fatalf("progress off wrote %q", buf.String())
	}
}

func TestRunRejectsUnknownProgressMode(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"run", syntheticConfig(t), "--set", "epochs=1", "--progress", "none"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "--progress") {
		t.Fatalf("--progress none: exit %d, want 2 naming the flag\n%s", code, stderr.String())
	}
}

// --summary-json is written after the run, into a folder that need not exist yet (as
// `--summary-json out/fmnist.json` on a fresh checkout, with a sink that makes no out/).
func TestRunMakesTheSummaryFolder(t *testing.T) {
	summary := filepath.Join(t.TempDir(), "out", "summary.json")
	runCLI(t, "run", syntheticConfig(t), "--set", "epochs=1", "--progress", "off", "--summary-json", summary)
	b, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Emitted int64 }
	if err := json.Unmarshal(b, &s); err != nil || s.Emitted != 64 {
		t.Fatalf("summary: emitted %d (%v)\n%s", s.Emitted, err, b)
	}
}

// Command-line mistakes exit 2 with a message; `version` prints the decoder.
func TestCommandLineMistakes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"version", "extra"}, 2, "version takes no arguments"},
		{[]string{"version"}, 0, "JPEG decoder"},
		{[]string{"shard", "--from", "x"}, 2, "--out is required"},
		{[]string{"augment", "--input", "x.png", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"augment", "--grid", "4by4", "--input", "x.png", "--recipe", "mocov2", "--out", "g.png"}, 2, `--grid "4by4"`},
		{[]string{"eval", "linear", "-checkpoint", "x"}, 2, "is required"},
		{[]string{"run", "--bogus"}, 2, "flag provided but not defined"},
	} {
		var stdout, stderr bytes.Buffer
		code := runMain(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, want %d and %q\n%s%s", tc.args, code, tc.code, tc.want, stdout.String(), stderr.String())
		}
	}
}
