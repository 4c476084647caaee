package mococli

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"pipeline/sink/moco"
	"pipeline/sink/moco/device"
)

// writeIDX writes an uncompressed IDX file of unsigned bytes.
func writeIDX(t *testing.T, path string, dims []int, data []uint8) {
	t.Helper()
	head := []byte{0, 0, 8, byte(len(dims))}
	for _, d := range dims {
		head = append(head, byte(d>>24), byte(d>>16), byte(d>>8), byte(d))
	}
	if err := os.WriteFile(path, append(head, data...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Two classes that differ in brightness: a linear probe on any backbone separates them, so
// the command must report a high accuracy; it also reads the newest checkpoint of a folder.
func TestEvalLinearMainOnCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := moco.DefaultConfig()
	cfg.Encoder, cfg.Backend, cfg.Queue, cfg.BNSplits = "small", device.Go, 8, 2
	backend, err := device.Open(device.Go, "")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := moco.NewTrainer(cfg, backend)
	if err != nil {
		t.Fatal(err)
	}
	views := tensors.FromFlatDataAndDimensions(make([]uint8, 4*8*8*3), 4, 8, 8, 3)
	if _, err := tr.TrainStep(views, views, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Save(filepath.Join(dir, "ck"), nil); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, split := range []string{"train", "test"} {
		const n = 64
		pix := make([]uint8, n*8*8)
		labels := make([]uint8, n)
		for i := range n {
			labels[i] = uint8(i % 2)
			for p := range 64 {
				pix[i*64+p] = uint8(40 + 150*int(labels[i]) + rng.IntN(40))
			}
		}
		writeIDX(t, filepath.Join(dir, split+"-images"), []int{n, 8, 8}, pix)
		writeIDX(t, filepath.Join(dir, split+"-labels"), []int{n}, labels)
	}
	var out, errs strings.Builder
	err = EvalLinearMain([]string{"-checkpoint", filepath.Join(dir, "ck"),
		"-train-images", filepath.Join(dir, "train-images"), "-train-labels", filepath.Join(dir, "train-labels"),
		"-test-images", filepath.Join(dir, "test-images"), "-test-labels", filepath.Join(dir, "test-labels"),
		"-epochs", "20", "-lr", "1", "-batch", "16"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if acc := res["test_accuracy"].(float64); acc < 0.95 {
		t.Errorf("test accuracy %.3f on separable classes: %s", acc, out.String())
	}
	// The curve: one point per epoch, the lr cut at 60 % and 80 %, the last test accuracy the
	// result's, and the same lines on stderr.
	var curve struct{ Curve []moco.LinearEpoch }
	if err := json.Unmarshal([]byte(out.String()), &curve); err != nil || len(curve.Curve) != 20 {
		t.Fatalf("curve of %d points (%v): %s", len(curve.Curve), err, out.String())
	}
	c := curve.Curve
	if c[0].Epoch != 1 || c[11].LR != 1 || math.Abs(c[12].LR-0.1) > 1e-12 || math.Abs(c[19].LR-0.01) > 1e-12 {
		t.Errorf("lr schedule %+v", c)
	}
	if c[19].TestAccuracy != res["test_accuracy"].(float64) || !(c[19].Loss < c[0].Loss) {
		t.Errorf("curve ends at %+v, starts at %+v; result %v", c[19], c[0], res["test_accuracy"])
	}
	if lines := strings.Count(errs.String(), "\n"); lines != 21 || !strings.Contains(errs.String(), "test acc") {
		t.Errorf("stderr curve of %d lines:\n%s", lines, errs.String())
	}
	if res["step"].(float64) != 1 {
		t.Errorf("evaluated checkpoint at step %v, want 1", res["step"])
	}
	if err := EvalLinearMain([]string{"-checkpoint", dir}, &out, &errs); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("missing flags: error %v", err)
	}
}
