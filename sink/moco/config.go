// Package moco is the MoCo v2 trainer sink: it consumes the pipeline's Arrow batches of twin
// uint8 views (columns q and k), trains a query encoder by InfoNCE against a momentum key
// encoder and a queue of negatives with GoMLX, and reports loss, accuracy, timing, kNN accuracy
// and checkpoints. The algorithm is MoCo v2 (Chen et al. 2020); docs/trainer.md gives it step
// by step as this package implements it.
package moco

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"pipeline/sink/moco/device"
	"pipeline/sink/moco/model"
)

// Config is the `sink:` block of a pipeline config with `kind: moco`. Start from
// DefaultConfig() and unmarshal the YAML over it: fields left out keep the MoCo v2 defaults.
type Config struct {
	Kind        string  `yaml:"kind"`
	Encoder     string  `yaml:"encoder"` // resnet50 | resnet18 | small
	Stem        string  `yaml:"stem"`    // imagenet | cifar
	MLP         bool    `yaml:"mlp"`     // MoCo v2 MLP head; false gives MoCo v1's fc
	Dim         int     `yaml:"dim"`
	Queue       int     `yaml:"queue"`       // K, divisible by the keys enqueued per step
	Momentum    float64 `yaml:"momentum"`    // m of the key encoder's EMA
	Temperature float64 `yaml:"temperature"` // τ
	BNSplits    int     `yaml:"bn_splits"`   // single-device ShuffleBN groups
	// LR is the learning rate for a batch of 256; the run uses LR * batch / 256.
	LR              float64 `yaml:"lr"`
	SGDMomentum     float64 `yaml:"sgd_momentum"`
	WeightDecay     float64 `yaml:"weight_decay"`
	Epochs          int     `yaml:"epochs"` // E of the cosine schedule
	Cosine          bool    `yaml:"cos"`
	Symmetric       bool    `yaml:"symmetric"`
	Backend         string  `yaml:"backend"` // auto | xla | go
	Plugin          string  `yaml:"plugin"`  // PJRT plugin path for xla; empty: searched
	DType           string  `yaml:"dtype"`   // float32 | bfloat16 (convolutions and matmuls)
	CheckpointDir   string  `yaml:"checkpoint_dir"`
	CheckpointEvery int     `yaml:"checkpoint_every"` // steps; 0: only at the end
	CheckpointKeep  int     `yaml:"checkpoint_keep"`
	LogEvery        int     `yaml:"log_every"` // steps; 0: no step log
	// Plot is the training report's PNG (its CSV beside it), redrawn after every epoch;
	// empty: checkpoint_dir/training.png when there is a checkpoint_dir, else none.
	Plot           string  `yaml:"plot"`
	Seed           uint64  `yaml:"seed"`
	KNNK           int     `yaml:"knn_k"`
	KNNTemperature float64 `yaml:"knn_temperature"`
	// KNNPixels also runs the kNN vote on raw pixels once at the start (knn_pixels_accuracy):
	// the baseline the features should beat.
	KNNPixels bool `yaml:"knn_pixels"`
}

// DefaultConfig is MoCo v2 on ImageNet (main_moco.py --mlp --moco-t 0.2 --aug-plus --cos),
// with 8 BN splits to stand in for 8 GPUs' ShuffleBN on one device.
func DefaultConfig() Config {
	return Config{
		Kind:           "moco",
		Encoder:        "resnet50",
		Stem:           "imagenet",
		MLP:            true,
		Dim:            128,
		Queue:          65536,
		Momentum:       0.999,
		Temperature:    0.2,
		BNSplits:       8,
		LR:             0.03,
		SGDMomentum:    0.9,
		WeightDecay:    1e-4,
		Epochs:         200,
		Cosine:         true,
		Backend:        device.Auto,
		DType:          "float32",
		CheckpointKeep: 2,
		LogEvery:       50,
		Seed:           1,
		KNNK:           200,
		KNNTemperature: 0.1,
	}
}

// Validate checks the fields that do not depend on the batch.
func (c Config) Validate() error {
	if c.Kind != "" && c.Kind != "moco" {
		return fmt.Errorf("sink kind %q is not moco", c.Kind)
	}
	if err := c.Arch().Validate(); err != nil {
		return err
	}
	switch {
	case c.Queue <= 0:
		return fmt.Errorf("queue must be positive, got %d", c.Queue)
	case c.Momentum < 0 || c.Momentum > 1:
		return fmt.Errorf("momentum must be in [0, 1], got %g", c.Momentum)
	case c.Temperature <= 0:
		return fmt.Errorf("temperature must be positive, got %g", c.Temperature)
	case c.BNSplits <= 0:
		return fmt.Errorf("bn_splits must be positive, got %d", c.BNSplits)
	case c.LR < 0 || c.WeightDecay < 0:
		return fmt.Errorf("lr and weight_decay must not be negative")
	case c.Epochs <= 0:
		return fmt.Errorf("epochs must be positive, got %d", c.Epochs)
	case c.KNNK <= 0 || c.KNNTemperature <= 0:
		return fmt.Errorf("knn_k and knn_temperature must be positive")
	}
	if _, err := c.computeDType(); err != nil {
		return err
	}
	switch c.Backend {
	case device.Auto, device.XLA, device.Go:
	default:
		return fmt.Errorf("unknown backend %q: want auto, xla or go", c.Backend)
	}
	return nil
}

// Arch is the encoder the config describes.
func (c Config) Arch() model.Arch {
	return model.Arch{Encoder: c.Encoder, Stem: c.Stem, MLP: c.MLP, Dim: c.Dim}
}

func (c Config) computeDType() (dtypes.DType, error) {
	switch c.DType {
	case "float32", "":
		return dtypes.Float32, nil
	case "bfloat16":
		return dtypes.BFloat16, nil
	}
	return dtypes.InvalidDType, fmt.Errorf("unknown dtype %q: want float32 or bfloat16", c.DType)
}

// keysPerStep is how many keys one step enqueues: the batch, twice with the symmetric loss.
func (c Config) keysPerStep(batch int) int {
	if c.Symmetric {
		return 2 * batch
	}
	return batch
}

// checkBatch reports a batch size the config cannot train with.
func (c Config) checkBatch(batch int) error {
	if batch%c.BNSplits != 0 {
		return fmt.Errorf("batch %d is not divisible by bn_splits %d", batch, c.BNSplits)
	}
	if n := c.keysPerStep(batch); c.Queue%n != 0 {
		return fmt.Errorf("queue %d is not divisible by the %d keys enqueued per step", c.Queue, n)
	}
	return nil
}
