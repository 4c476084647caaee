package moco

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/backends"
)

// LinearConfig is the linear-classification protocol (main_lincls.py): a linear classifier on
// frozen backbone features, W ~ N(0, 0.01²), b = 0, SGD with momentum, lr × 0.1 at 60 % and
// 80 % of the epochs. The features are computed once (eval mode, no augmentation), so this is
// the protocol without its train-time crops and flips.
type LinearConfig struct {
	Epochs      int
	LR          float64
	Momentum    float64
	WeightDecay float64
	Batch       int
	Seed        uint64
	// OnEpoch, if set, is given each epoch's point of the curve as soon as it is known.
	OnEpoch func(LinearEpoch)
}

// LinearEpoch is one point of the classifier's training curve.
type LinearEpoch struct {
	Epoch         int     `json:"epoch"` // from 1
	LR            float64 `json:"lr"`
	Loss          float64 `json:"loss"`           // mean cross-entropy over the epoch's batches, as they trained
	TrainAccuracy float64 `json:"train_accuracy"` // over the epoch, each sample before its update
	TestAccuracy  float64 `json:"test_accuracy"`  // after the epoch
}

// DefaultLinearConfig is main_lincls.py's: 100 epochs, lr 30, momentum 0.9, no weight decay,
// batch 256.
func DefaultLinearConfig() LinearConfig {
	return LinearConfig{Epochs: 100, LR: 30, Momentum: 0.9, Batch: 256, Seed: 1}
}

// LinearResult is the outcome of a linear evaluation.
type LinearResult struct {
	TrainAccuracy, TestAccuracy float64
	Classes, Width              int
	Curve                       []LinearEpoch
}

// LinearEval trains a linear classifier on train features (rows of width floats) and reports
// its top-1 accuracy on train and test.
func LinearEval(train []float32, trainLabels []int32, test []float32, testLabels []int32, width int, cfg LinearConfig) (LinearResult, error) {
	n := len(trainLabels)
	if n == 0 || len(train) != n*width || len(test) != len(testLabels)*width {
		return LinearResult{}, fmt.Errorf("linear eval: %d train and %d test features of width %d do not match %d and %d labels",
			len(train), len(test), width, n, len(testLabels))
	}
	classes := 0
	for _, l := range trainLabels {
		if l < 0 {
			return LinearResult{}, fmt.Errorf("linear eval: negative label %d", l)
		}
		classes = max(classes, int(l)+1)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6c696e))
	w := make([]float64, width*classes) // [width, classes]
	for i := range w {
		w[i] = rng.NormFloat64() * 0.01
	}
	b := make([]float64, classes)
	vw, vb := make([]float64, len(w)), make([]float64, classes)
	gw, gb := make([]float64, len(w)), make([]float64, classes)
	logits := make([]float64, classes)
	order := rng.Perm(n)
	batch := max(cfg.Batch, 1)
	accuracy := func(feats []float32, labels []int32) float64 {
		correct := 0
		for r, l := range labels {
			softmax(feats[r*width:(r+1)*width], w, b, logits)
			if argmax(logits) == int(l) {
				correct++
			}
		}
		return float64(correct) / float64(max(len(labels), 1))
	}
	var curve []LinearEpoch
	for epoch := range cfg.Epochs {
		lr := cfg.LR
		if float64(epoch) >= 0.6*float64(cfg.Epochs) {
			lr *= 0.1
		}
		if float64(epoch) >= 0.8*float64(cfg.Epochs) {
			lr *= 0.1
		}
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		var lossSum float64
		correct := 0
		for start := 0; start < n; start += batch {
			rows := order[start:min(start+batch, n)]
			clear(gw)
			clear(gb)
			for _, r := range rows {
				x := train[r*width : (r+1)*width]
				softmax(x, w, b, logits)
				lossSum -= math.Log(max(logits[trainLabels[r]], 1e-300))
				if argmax(logits) == int(trainLabels[r]) {
					correct++
				}
				logits[trainLabels[r]]-- // d(cross-entropy)/d(logits) = p - onehot
				for i, xi := range x {
					row := gw[i*classes : (i+1)*classes]
					for c := range classes {
						row[c] += float64(xi) * logits[c]
					}
				}
				for c := range classes {
					gb[c] += logits[c]
				}
			}
			scale := 1 / float64(len(rows))
			for i := range w {
				g := gw[i]*scale + cfg.WeightDecay*w[i]
				vw[i] = cfg.Momentum*vw[i] + g
				w[i] -= lr * vw[i]
			}
			for c := range b {
				g := gb[c]*scale + cfg.WeightDecay*b[c]
				vb[c] = cfg.Momentum*vb[c] + g
				b[c] -= lr * vb[c]
			}
		}
		point := LinearEpoch{Epoch: epoch + 1, LR: lr, Loss: lossSum / float64(n),
			TrainAccuracy: float64(correct) / float64(n), TestAccuracy: accuracy(test, testLabels)}
		curve = append(curve, point)
		if cfg.OnEpoch != nil {
			cfg.OnEpoch(point)
		}
	}
	return LinearResult{TrainAccuracy: accuracy(train, trainLabels), TestAccuracy: accuracy(test, testLabels),
		Classes: classes, Width: width, Curve: curve}, nil
}

func argmax(v []float64) int {
	best := 0
	for c := range v {
		if v[c] > v[best] {
			best = c
		}
	}
	return best
}

// softmax writes the class probabilities of x·w + b into out.
func softmax(x []float32, w, b, out []float64) {
	classes := len(out)
	copy(out, b)
	for i, xi := range x {
		row := w[i*classes : (i+1)*classes]
		for c := range classes {
			out[c] += float64(xi) * row[c]
		}
	}
	peak := math.Inf(-1)
	for _, v := range out {
		peak = max(peak, v)
	}
	var sum float64
	for c := range out {
		out[c] = math.Exp(out[c] - peak)
		sum += out[c]
	}
	for c := range out {
		out[c] /= sum
	}
}

// LoadTrainer builds a trainer with the architecture stored in a checkpoint, on backend, and
// restores the checkpoint into it.
func LoadTrainer(path string, backend backends.Backend) (*Trainer, error) {
	ck, err := readCheckpoint(path)
	if err != nil {
		return nil, err
	}
	t, err := NewTrainer(ck.Config, backend)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if _, err := t.Load(path); err != nil {
		return nil, err
	}
	return t, nil
}

// Width is the size of the backbone features.
func (t *Trainer) Width() int { return t.arch.Width() }
