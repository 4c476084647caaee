package job

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"pipeline/augment"
	"pipeline/pipeline"
	"pipeline/pipeline/config"
	"pipeline/sink"
	"pipeline/sink/moco"
	"pipeline/sink/moco/device"
	"pipeline/stages/decode"
	"pipeline/stages/source"
)

// KNN is the `knn:` block: the labelled data the MoCo trainer's kNN monitor classifies after
// every epoch (and once at the start), read without augmentation.
type KNN struct {
	Bank source.Config `yaml:"bank"` // the feature bank: training images
	Test source.Config `yaml:"test"` // the images to classify
	// Size is the side the images are resized to (PIL bilinear); default: the q view's size.
	Size int `yaml:"size"`
	// Limit caps the samples read from each split (0: all).
	Limit int `yaml:"limit"`
}

const knnBatch = 256

// openMoCo builds the trainer sink.
func openMoCo(j *Job) (sink.Sink, error) {
	cfg, opts, err := mocoConfig(j)
	if err != nil {
		return nil, err
	}
	return moco.New(cfg, opts)
}

// describeMoCo says which backend the trainer will run on (`auto` resolved).
func describeMoCo(j *Job) string {
	cfg, _, err := mocoConfig(j)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	c, err := device.Resolve(cfg.Backend, cfg.Plugin)
	if err != nil {
		return "(backend " + cfg.Backend + ": " + err.Error() + ")"
	}
	return "on " + c.String()
}

// mocoConfig reads the trainer's config: the sink block over MoCo v2's defaults, the cosine
// schedule over the run's epochs unless the block says otherwise, and the kNN splits.
func mocoConfig(j *Job) (moco.Config, moco.Options, error) {
	file := j.Config.File()
	cfg := moco.DefaultConfig()
	cfg.Epochs = j.Config.Epochs
	cfg.Seed = j.Config.Seed
	opts := moco.Options{Log: os.Stderr}
	if err := config.DecodeNode(file, j.Config.Sink, &cfg); err != nil {
		return cfg, opts, blockError(err)
	}
	if j.Config.KNN != nil {
		var k KNN
		if err := config.DecodeNode(file, j.Config.KNN, &k); err != nil {
			return cfg, opts, blockError(err)
		}
		if k.Size == 0 && len(j.Groups) > 0 {
			k.Size = j.Groups[0].Height
		}
		opts.KNN = &moco.KNNSplits{
			Bank: labelled(k.Bank, k.Size, k.Limit, j.Config.Decode.MaxPixels),
			Test: labelled(k.Test, k.Size, k.Limit, j.Config.Decode.MaxPixels),
		}
	}
	return cfg, opts, nil
}

// labelled reads a split once, in order, decoding each image and resizing it to size x size:
// the test transform of the kNN monitor. Its buffers are small and short-lived, outside the
// memory budget.
func labelled(cfg source.Config, size, limit int, maxPixels int64) moco.Dataset {
	return func(yield func(moco.LabeledBatch, error) bool) {
		off := false
		cfg.ShuffleShards = &off
		cfg.ShuffleBuffer = 0
		budget := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 256 << 20})
		src, err := source.Open(cfg, source.Options{Epochs: 1, Account: budget.Encoded})
		if err != nil {
			yield(moco.LabeledBatch{}, fmt.Errorf("knn split: %w", err))
			return
		}
		defer src.Close()
		dec := decode.Decoder{MaxPixels: maxPixels}
		b := moco.LabeledBatch{H: size, W: size}
		ctx := context.Background()
		for n := 0; limit == 0 || n < limit; n++ {
			it, err := src.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				yield(moco.LabeledBatch{}, fmt.Errorf("knn split: %w", err))
				return
			}
			img, err := dec.Decode(it.Encoded, nil)
			it.Release()
			if err != nil {
				yield(moco.LabeledBatch{}, fmt.Errorf("knn split %s: %w", it.Meta, err))
				return
			}
			full := pipeline.ViewParams{Crop: pipeline.Crop{Height: img.Height, Width: img.Width}, Size: [2]int{size, size}}
			view, err := augment.Replay(img, full)
			if err != nil {
				yield(moco.LabeledBatch{}, fmt.Errorf("knn split %s: %w", it.Meta, err))
				return
			}
			b.Images = append(b.Images, view.Pix...)
			b.Labels = append(b.Labels, it.Label)
			b.N++
			if b.N == knnBatch {
				if !yield(b, nil) {
					return
				}
				b = moco.LabeledBatch{H: size, W: size}
			}
		}
		if b.N > 0 {
			yield(b, nil)
		}
	}
}

// positionState encodes a source position as the opaque state a stateful sink checkpoints.
func positionState(p source.Position) []byte {
	b, _ := json.Marshal(p)
	return b
}

// resumePosition reads the position a stateful sink restored from its checkpoint, if any.
func resumePosition(snk sink.Sink) (*source.Position, error) {
	st, ok := snk.(sink.Stateful)
	if !ok {
		return nil, nil
	}
	b := st.PipelineState()
	if len(b) == 0 {
		return nil, nil
	}
	var p source.Position
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("the sink's checkpoint holds a pipeline position that does not parse: %w", err)
	}
	return &p, nil
}
