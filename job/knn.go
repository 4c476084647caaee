package job

import (
	"context"
	"fmt"
	"io"

	"pipeline/augment"
	"pipeline/pipeline"
	"pipeline/sink/moco"
	"pipeline/stages/decode"
	"pipeline/stages/source"
)

const knnBatch = 256

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
