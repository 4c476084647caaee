package moco

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"pipeline/sink/moco/device"
)

// stepBench is one model of the step-time comparison (bench/trainer-step.sh runs these
// alternately with bench/trainer_step_torch.py, the same step in PyTorch).
type stepBench struct {
	name            string
	encoder, stem   string
	batch, size     int
	queue, bnSplits int
}

var stepBenches = []stepBench{
	// examples/fashion-mnist.yaml's trainer.
	{name: "small-28-b64", encoder: "small", stem: "cifar", batch: 64, size: 28, queue: 1024, bnSplits: 4},
	{name: "resnet18-64-b32", encoder: "resnet18", stem: "imagenet", batch: 32, size: 64, queue: 1024, bnSplits: 4},
}

// BenchmarkStep times one training step (host views in, loss out) per model and backend,
// after a first step that compiles: go, xla (im2col convolutions, as the trainer runs on a CPU
// plugin) and xla-native (GoMLX's convolution). MOCO_BENCH_DTYPE=bfloat16 runs it in bfloat16.
func BenchmarkStep(b *testing.B) {
	for _, sb := range stepBenches {
		for _, variant := range []string{device.Go, device.XLA, device.XLA + "-native"} {
			b.Run(sb.name+"/"+variant, func(b *testing.B) {
				cfg := tinyConfig()
				cfg.Backend = strings.TrimSuffix(variant, "-native")
				cfg.Encoder, cfg.Stem, cfg.Queue, cfg.BNSplits = sb.encoder, sb.stem, sb.queue, sb.bnSplits
				cfg.Momentum = 0.99
				if dt := os.Getenv("MOCO_BENCH_DTYPE"); dt != "" {
					cfg.DType = dt
				}
				tr := newTestTrainer(b, cfg)
				tr.nativeConv = strings.HasSuffix(variant, "-native")
				q, k := randomViews(1, sb.batch, sb.size, sb.size), randomViews(2, sb.batch, sb.size, sb.size)
				start := time.Now()
				if _, err := tr.TrainStep(q, k, 0); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(start).Seconds(), "first_step_s")
				b.ResetTimer()
				for range b.N {
					if _, err := tr.TrainStep(q, k, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkCompileResNet50 times XLA's compilation of the ResNet-50 MoCo step at 224², batch
// MOCO_BENCH_BATCH (32), with split BN (8 groups) and with plain BN (one group), once each,
// with GoMLX's convolutions: the graph the GPU compiles.
func BenchmarkCompileResNet50(b *testing.B) {
	batch := 32
	if s := os.Getenv("MOCO_BENCH_BATCH"); s != "" {
		var err error
		if batch, err = strconv.Atoi(s); err != nil {
			b.Fatalf("MOCO_BENCH_BATCH: %v", err)
		}
	}
	for _, splits := range []int{8, 1} {
		name := "splitbn8"
		if splits == 1 {
			name = "plainbn"
		}
		b.Run(name, func(b *testing.B) {
			cfg := tinyConfig()
			cfg.Backend = device.XLA
			cfg.Encoder, cfg.Stem, cfg.BNSplits, cfg.Queue = "resnet50", "imagenet", splits, 65536
			for range b.N {
				tr := newTestTrainer(b, cfg)
				tr.nativeConv = true
				if err := tr.ensureShapes(batch, 224, 224); err != nil {
					b.Fatal(err)
				}
				perm, inverse := tr.permutation()
				q := randomViews(1, batch, 224, 224)
				start := time.Now()
				if err := tr.stepExec.PreCompile(q, q, perm, inverse, float32(0.1)); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(start).Seconds(), "compile_s")
			}
		})
	}
}
