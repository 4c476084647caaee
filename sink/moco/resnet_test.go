package moco

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"pipeline/sink/moco/device"
)

// A training step of each ResNet runs on SimpleGo and, where a PJRT plugin is found, on XLA's
// CPU plugin (im2col convolutions on both), and the step graph of the GPU's code path (GoMLX's
// convolution and its gradient, native max-pool) runs on XLA and compiles on SimpleGo.
func TestResNetSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("ResNet steps skipped with -short")
	}
	eachBackend(t, func(t *testing.T, base Config) {
		for _, c := range []struct{ encoder, stem string }{{"resnet18", "imagenet"}, {"resnet18", "cifar"}, {"resnet50", "imagenet"}} {
			cfg := base
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
			if cfg.Backend == device.XLA {
				// The GPU's code path (GoMLX's convolution, native max-pool) runs here too.
				if res, err := native.TrainStep(randomViews(1, 4, 32, 32), randomViews(2, 4, 32, 32), 0); err != nil || math.IsNaN(float64(res.Loss)) {
					t.Errorf("%s/%s with native convolutions: loss %v, %v", c.encoder, c.stem, res.Loss, err)
				}
				continue
			}
			if err := native.ensureShapes(4, 32, 32); err != nil {
				t.Fatal(err)
			}
			perm, inverse := native.permutation()
			if err := native.stepExec.PreCompile(randomViews(1, 4, 32, 32), randomViews(2, 4, 32, 32), perm, inverse, float32(0.1)); err != nil {
				t.Errorf("%s/%s: XLA-path step graph: %v", c.encoder, c.stem, err)
			}
		}
	})
}

// With dtype bfloat16 the convolutions and matmuls run in bfloat16 and the loss stays close to
// the float32 one, on both backends; on XLA also for ResNet-18 with the ImageNet stem, whose
// native max-pool gradient is the op GoMLX cannot give a bfloat16 operand.
func TestBFloat16StepTracksFloat32(t *testing.T) {
	eachBackend(t, func(t *testing.T, base Config) {
		encoders := []string{"small"}
		if base.Backend == device.XLA {
			encoders = append(encoders, "resnet18")
		}
		for _, encoder := range encoders {
			var losses []float32
			for _, dtype := range []string{"float32", "bfloat16"} {
				cfg := base
				cfg.Encoder, cfg.DType = encoder, dtype
				size := 8
				if encoder != "small" {
					// 64² keeps 2x2 pixels after the stem, and one BN split all 4 samples in
					// a group: BN over 2 values a channel turns bfloat16 rounding into ±1.
					size, cfg.BNSplits, cfg.Queue = 64, 1, 8
				}
				tr := newTestTrainer(t, cfg)
				res, err := tr.TrainStep(randomViews(1, 4, size, size), randomViews(2, 4, size, size), 0)
				if err != nil {
					t.Fatalf("%s %s: %v", encoder, dtype, err)
				}
				losses = append(losses, res.Loss)
			}
			if d := math.Abs(float64(losses[1]-losses[0])) / float64(losses[0]); d > 0.05 || losses[0] == losses[1] {
				t.Errorf("%s: float32 loss %v, bfloat16 loss %v: want close but not identical", encoder, losses[0], losses[1])
			}
		}
	})
}

// xlaOpsRecorder stands in for the XLA backend when building graphs on SimpleGo: it claims the
// native max-pool gradient (SelectAndScatterMax), which SimpleGo lacks, answering it with a
// shape-correct stand-in (the graph is built and compiled, never trusted to compute), and
// records the dtype of every operand given to the ops whose bfloat16 form GoMLX v0.26.0's XLA
// backend emits as an invalid literal (docs/trainer.md).
type xlaOpsRecorder struct {
	backends.Backend
	caps       backends.Capabilities
	seen       map[string][]dtypes.DType
	reductions []reduction
}

// reduction is one ReduceSum or ReduceMax: its operand's dimensions and the axes it reduces.
type reduction struct {
	dims, axes []int
}

func newXLAOpsRecorder(t *testing.T) *xlaOpsRecorder {
	b, err := device.Open(device.Go, "")
	if err != nil {
		t.Fatal(err)
	}
	caps := b.Capabilities().Clone()
	caps.Operations[backends.OpTypeSelectAndScatterMax] = true
	return &xlaOpsRecorder{Backend: b, caps: caps, seen: map[string][]dtypes.DType{}}
}

func (r *xlaOpsRecorder) Capabilities() backends.Capabilities { return r.caps }

func (r *xlaOpsRecorder) Builder(name string) backends.Builder {
	return &recordingBuilder{Builder: r.Backend.Builder(name), r: r}
}

type recordingBuilder struct {
	backends.Builder
	r *xlaOpsRecorder
}

func (b *recordingBuilder) note(op string, x backends.Op) {
	shape, _ := b.OpShape(x)
	b.r.seen[op] = append(b.r.seen[op], shape.DType)
}

func (b *recordingBuilder) SelectAndScatterMax(operand, source backends.Op, window, strides []int, paddings [][2]int) (backends.Op, error) {
	b.note("SelectAndScatterMax", operand)
	return operand, nil // same shape and dtype as the real result
}

func (b *recordingBuilder) SelectAndScatterMin(operand, source backends.Op, window, strides []int, paddings [][2]int) (backends.Op, error) {
	b.note("SelectAndScatterMin", operand)
	return operand, nil
}

func (b *recordingBuilder) ReduceSum(x backends.Op, axes ...int) (backends.Op, error) {
	b.noteReduce(x, axes)
	return b.Builder.ReduceSum(x, axes...)
}

func (b *recordingBuilder) ReduceMax(x backends.Op, axes ...int) (backends.Op, error) {
	b.noteReduce(x, axes)
	return b.Builder.ReduceMax(x, axes...)
}

func (b *recordingBuilder) noteReduce(x backends.Op, axes []int) {
	shape, _ := b.OpShape(x)
	b.r.reductions = append(b.r.reductions, reduction{dims: shape.Dimensions, axes: append([]int(nil), axes...)})
}

func (b *recordingBuilder) ArgMinMax(x backends.Op, axis int, outputDType dtypes.DType, isMin bool) (backends.Op, error) {
	b.note("ArgMinMax", x)
	return b.Builder.ArgMinMax(x, axis, outputDType, isMin)
}

// recordXLAStep builds the training step graph of the XLA code path (native convolutions and
// max-pool) for cfg on batches of 4 views of 32x32, through the recorder, and compiles it on
// SimpleGo; it returns what the recorder saw.
func recordXLAStep(t *testing.T, cfg Config) *xlaOpsRecorder {
	t.Helper()
	rec := newXLAOpsRecorder(t)
	tr, err := NewTrainer(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	tr.nativeConv = true
	if err := tr.ensureShapes(4, 32, 32); err != nil {
		t.Fatal(err)
	}
	perm, inverse := tr.permutation()
	if err := tr.stepExec.PreCompile(randomViews(1, 4, 32, 32), randomViews(2, 4, 32, 32), perm, inverse, float32(0.1)); err != nil {
		t.Fatal(err)
	}
	return rec
}

// With dtype bfloat16, the step graph of the XLA code path (native convolutions and max-pool)
// gives none of those ops a bfloat16 operand: every convolution returns float32, so the
// max-pool and its gradient stay in float32.
func TestBFloat16StepKeepsPoolingInFloat32(t *testing.T) {
	cfg := tinyConfig()
	cfg.Encoder, cfg.DType, cfg.Queue = "resnet18", "bfloat16", 8
	rec := recordXLAStep(t, cfg)
	if len(rec.seen["SelectAndScatterMax"]) == 0 {
		t.Fatal("the step graph has no native max-pool gradient: the XLA path was not built")
	}
	for op, dts := range rec.seen {
		for _, dt := range dts {
			if dt == dtypes.BFloat16 {
				t.Errorf("%s got a bfloat16 operand: GoMLX's XLA backend cannot emit that", op)
			}
		}
	}
}

// Every reduction in the ResNet step graph, forward and backward, reduces one run of adjacent
// axes (ignoring axes of size 1). A reduction over axes {0, 2, 3} of a grouped
// [N/S, S, H, W, C] view, kept axes between reduced ones, is what split BN used to put in the
// gradient; XLA's GPU compiler took minutes over the step then (docs/trainer.md).
func TestStepReductionsReduceAdjacentAxes(t *testing.T) {
	encoders := []string{"resnet18", "resnet50"}
	if testing.Short() {
		encoders = encoders[:1]
	}
	for _, encoder := range encoders {
		cfg := tinyConfig()
		cfg.Encoder, cfg.Queue, cfg.BNSplits = encoder, 8, 2
		checkAdjacentReductions(t, cfg)
	}
}

func checkAdjacentReductions(t *testing.T, cfg Config) {
	rec := recordXLAStep(t, cfg)
	if len(rec.reductions) < 50 {
		t.Fatalf("%s: %d reductions recorded: the step graph was not built through the recorder", cfg.Encoder, len(rec.reductions))
	}
	for _, r := range rec.reductions {
		reduced := map[int]bool{}
		for _, a := range r.axes {
			reduced[a] = true
		}
		runs, inRun := 0, false
		for a, d := range r.dims {
			switch {
			case d == 1: // a unit axis joins whatever surrounds it
			case reduced[a] && !inRun:
				runs, inRun = runs+1, true
			case !reduced[a]:
				inRun = false
			}
		}
		if runs > 1 {
			t.Errorf("%s: reduction over axes %v of %v: reduced axes are not adjacent", cfg.Encoder, r.axes, r.dims)
		}
	}
}
