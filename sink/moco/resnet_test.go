package moco

import (
	"math"
	"testing"
)

// A training step of each ResNet runs on SimpleGo (im2col convolutions), and the step graph of
// the XLA code path (GoMLX's convolution and its gradient) builds and compiles.
func TestResNetSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("ResNet steps skipped with -short")
	}
	for _, c := range []struct{ encoder, stem string }{{"resnet18", "imagenet"}, {"resnet18", "cifar"}, {"resnet50", "imagenet"}} {
		cfg := tinyConfig()
		cfg.Encoder, cfg.Stem = c.encoder, c.stem
		cfg.Queue = 8
		tr := newTestTrainer(t, cfg)
		res, err := tr.TrainStep(randomViews(1, 4, 32, 32), randomViews(2, 4, 32, 32), 0)
		if err != nil {
			t.Fatalf("%s/%s: %v", c.encoder, c.stem, err)
		}
		if math.IsNaN(float64(res.Loss)) || res.Loss <= 0 {
			t.Errorf("%s/%s: loss %v", c.encoder, c.stem, res.Loss)
		}
		native := newTestTrainer(t, cfg)
		native.nativeConv = true
		if err := native.ensureShapes(4, 32, 32); err != nil {
			t.Fatal(err)
		}
		perm, inverse := native.permutation()
		if err := native.stepExec.PreCompile(randomViews(1, 4, 32, 32), randomViews(2, 4, 32, 32), perm, inverse, float32(0.1)); err != nil {
			t.Errorf("%s/%s: XLA-path step graph: %v", c.encoder, c.stem, err)
		}
	}
}

// With dtype bfloat16 the convolutions and matmuls run in bfloat16 and the loss stays close to
// the float32 one.
func TestBFloat16StepTracksFloat32(t *testing.T) {
	var losses []float32
	for _, dtype := range []string{"float32", "bfloat16"} {
		cfg := tinyConfig()
		cfg.DType = dtype
		tr := newTestTrainer(t, cfg)
		res, err := tr.TrainStep(randomViews(1, 4, 8, 8), randomViews(2, 4, 8, 8), 0)
		if err != nil {
			t.Fatalf("%s: %v", dtype, err)
		}
		losses = append(losses, res.Loss)
	}
	if d := math.Abs(float64(losses[1]-losses[0])) / float64(losses[0]); d > 0.05 || losses[0] == losses[1] {
		t.Errorf("float32 loss %v, bfloat16 loss %v: want close but not identical", losses[0], losses[1])
	}
}
