package moco

import (
	"fmt"
	"iter"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// LabeledBatch is a batch of uint8 HWC images [N, H, W, 3] with their class labels.
type LabeledBatch struct {
	Images  []uint8 // N*H*W*3 bytes, row-major
	N, H, W int
	Labels  []int32 // N labels
}

// Check reports a batch whose buffers do not match its sizes.
func (b LabeledBatch) Check() error {
	if len(b.Images) != b.N*b.H*b.W*3 || len(b.Labels) != b.N {
		return fmt.Errorf("labelled batch of %d %dx%d images has %d bytes and %d labels", b.N, b.H, b.W, len(b.Images), len(b.Labels))
	}
	return nil
}

// Dataset is a labelled data set, ranged over once per evaluation.
type Dataset = iter.Seq2[LabeledBatch, error]

// evalBatch is the fixed batch size of evaluation executables: short batches are padded so
// that each executable compiles once.
const evalBatch = 256

// Features returns encoder_q's output in eval mode, L2-normalised ([N, dim]), for every image
// of split, with the labels.
func (t *Trainer) Features(split Dataset) (feats []float32, labels []int32, err error) {
	if t.featuresExec == nil {
		t.featuresExec, err = context.NewExec(t.backend, t.ctx, func(ctx *context.Context, images *Node) *Node {
			return Normalize(t.arch.Forward(t.net(false, nil, nil), ctx.In(scopeQuery).Reuse(), normalizeImages(images)))
		})
		if err != nil {
			return nil, nil, fmt.Errorf("features: %w", err)
		}
	}
	return t.runEval(t.featuresExec, split)
}

// BackboneFeatures returns encoder_q's pooled backbone features in eval mode ([N, width]),
// the input of a linear classifier.
func (t *Trainer) BackboneFeatures(split Dataset) (feats []float32, labels []int32, err error) {
	if t.backboneExec == nil {
		t.backboneExec, err = context.NewExec(t.backend, t.ctx, func(ctx *context.Context, images *Node) *Node {
			return t.arch.Backbone(t.net(false, nil, nil), ctx.In(scopeQuery).Reuse(), normalizeImages(images))
		})
		if err != nil {
			return nil, nil, fmt.Errorf("backbone features: %w", err)
		}
	}
	return t.runEval(t.backboneExec, split)
}

func (t *Trainer) runEval(exec *context.Exec, split Dataset) (feats []float32, labels []int32, err error) {
	var h, w int
	var padded []uint8
	for b, err := range split {
		if err != nil {
			return nil, nil, err
		}
		if err := b.Check(); err != nil {
			return nil, nil, err
		}
		if h == 0 {
			h, w = b.H, b.W
			padded = make([]uint8, evalBatch*h*w*3)
		} else if b.H != h || b.W != w {
			return nil, nil, fmt.Errorf("evaluation images of %dx%d after %dx%d", b.H, b.W, h, w)
		}
		for start := 0; start < b.N; start += evalBatch {
			n := min(evalBatch, b.N-start)
			clear(padded)
			copy(padded, b.Images[start*h*w*3:(start+n)*h*w*3])
			out, err := exec.Exec(tensors.FromFlatDataAndDimensions(padded, evalBatch, h, w, 3))
			if err != nil {
				return nil, nil, fmt.Errorf("evaluation batch: %w", err)
			}
			flat := tensors.MustCopyFlatData[float32](out[0])
			out[0].MustFinalizeAll()
			feats = append(feats, flat[:n*len(flat)/evalBatch]...)
			labels = append(labels, b.Labels[start:start+n]...)
		}
	}
	return feats, labels, nil
}
