package moco

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"pipeline/sink/moco/device"
	"pipeline/sink/moco/device/devicetest"
)

// tinyConfig is a small CPU configuration: the small convnet, a short queue.
func tinyConfig() Config {
	cfg := DefaultConfig()
	cfg.Encoder = "small"
	cfg.Backend = device.Go
	cfg.Queue = 16
	cfg.BNSplits = 2
	cfg.Epochs = 4
	cfg.LogEvery = 0
	return cfg
}

// eachBackend runs test on SimpleGo and on XLA (the PJRT plugin devicetest finds; skipped
// without one, except in CI), each with tinyConfig on that backend.
func eachBackend(t *testing.T, test func(t *testing.T, cfg Config)) {
	for _, kind := range []string{device.Go, device.XLA} {
		t.Run(kind, func(t *testing.T) {
			cfg := tinyConfig()
			cfg.Backend = kind
			if kind == device.XLA {
				cfg.Plugin = devicetest.XLAPlugin(t)
			}
			test(t, cfg)
		})
	}
}

func newTestTrainer(t testing.TB, cfg Config) *Trainer {
	t.Helper()
	backend, err := device.Open(cfg.Backend, cfg.Plugin)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(cfg, backend)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// randomViews are n random uint8 images h x w x 3, seeded.
func randomViews(seed uint64, n, h, w int) *tensors.Tensor {
	rng := rand.New(rand.NewPCG(seed, 7))
	pix := make([]uint8, n*h*w*3)
	for i := range pix {
		pix[i] = uint8(rng.IntN(256))
	}
	return tensors.FromFlatDataAndDimensions(pix, n, h, w, 3)
}

func flatBytes(t *tensors.Tensor) []uint8 { return tensors.MustCopyFlatData[uint8](t) }
