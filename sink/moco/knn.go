package moco

import (
	"container/heap"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// KNNSplits are the data of the kNN monitor: the feature bank (training images without
// augmentation) and the images to classify.
type KNNSplits struct {
	Bank, Test Dataset
}

// KNNAccuracy runs the MoCo kNN monitor: features of encoder_q (eval mode, L2-normalised) for
// bank and test; each test image takes the k most cosine-similar bank images, weighted by
// exp(sim/temperature), and predicts the class with the largest summed weight.
func (t *Trainer) KNNAccuracy(splits KNNSplits) (float64, error) {
	bank, bankLabels, err := t.Features(splits.Bank)
	if err != nil {
		return 0, fmt.Errorf("knn bank: %w", err)
	}
	test, testLabels, err := t.Features(splits.Test)
	if err != nil {
		return 0, fmt.Errorf("knn test: %w", err)
	}
	return KNNClassify(bank, bankLabels, test, testLabels, t.cfg.Dim, t.cfg.KNNK, t.cfg.KNNTemperature)
}

// PixelKNNAccuracy is the kNN monitor's vote on raw pixels instead of features: each image is
// the unit vector of its pixels averaged over the three channels (for gray images, as
// Fashion-MNIST's, the same cosines as the RGB vector, at a third of the cost). It is the
// baseline a trained encoder's kNN accuracy should beat.
func PixelKNNAccuracy(splits KNNSplits, k int, temperature float64) (float64, error) {
	bank, bankLabels, dim, err := pixelFeatures(splits.Bank)
	if err != nil {
		return 0, fmt.Errorf("knn pixels, bank: %w", err)
	}
	test, testLabels, testDim, err := pixelFeatures(splits.Test)
	if err != nil {
		return 0, fmt.Errorf("knn pixels, test: %w", err)
	}
	if dim != testDim {
		return 0, fmt.Errorf("knn pixels: bank images have %d pixels, test images %d", dim, testDim)
	}
	return KNNClassify(bank, bankLabels, test, testLabels, dim, k, temperature)
}

// pixelFeatures are the images of ds as unit vectors of their channel-averaged pixels.
func pixelFeatures(ds Dataset) (feats []float32, labels []int32, dim int, err error) {
	for b, err := range ds {
		if err != nil {
			return nil, nil, 0, err
		}
		if err := b.Check(); err != nil {
			return nil, nil, 0, err
		}
		if d := b.H * b.W; dim == 0 {
			dim = d
		} else if d != dim {
			return nil, nil, 0, fmt.Errorf("images of %dx%d after images of %d pixels", b.H, b.W, dim)
		}
		for i := range b.N {
			row := len(feats)
			var norm float64
			pix := b.Images[i*dim*3 : (i+1)*dim*3]
			for p := 0; p < len(pix); p += 3 {
				v := (float32(pix[p]) + float32(pix[p+1]) + float32(pix[p+2])) / 3
				feats = append(feats, v)
				norm += float64(v) * float64(v)
			}
			if norm > 0 {
				inv := float32(1 / math.Sqrt(norm))
				for j := row; j < len(feats); j++ {
					feats[j] *= inv
				}
			}
		}
		labels = append(labels, b.Labels...)
	}
	return feats, labels, dim, nil
}

// KNNClassify is the weighted kNN vote over unit feature rows of size dim; it returns the
// top-1 accuracy on test.
func KNNClassify(bank []float32, bankLabels []int32, test []float32, testLabels []int32, dim, k int, temperature float64) (float64, error) {
	nb, nt := len(bankLabels), len(testLabels)
	if nb == 0 || nt == 0 || len(bank) != nb*dim || len(test) != nt*dim {
		return 0, fmt.Errorf("knn: %d bank and %d test features of size %d do not match %d and %d labels", len(bank), len(test), dim, nb, nt)
	}
	classes := 0
	for _, l := range bankLabels {
		if l < 0 {
			return 0, fmt.Errorf("knn: bank label %d is negative", l)
		}
		classes = max(classes, int(l)+1)
	}
	k = min(k, nb)
	workers := runtime.GOMAXPROCS(0)
	correct := make([]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			top := make(neighbours, 0, k)
			votes := make([]float64, classes)
			for i := w; i < nt; i += workers {
				query := test[i*dim : (i+1)*dim]
				top = top[:0]
				for j := range nb {
					sim := dot(query, bank[j*dim:(j+1)*dim])
					if len(top) < k {
						heap.Push(&top, neighbour{sim, bankLabels[j]})
					} else if sim > top[0].sim {
						top[0] = neighbour{sim, bankLabels[j]}
						heap.Fix(&top, 0)
					}
				}
				clear(votes)
				for _, nb := range top {
					votes[nb.label] += math.Exp(float64(nb.sim) / temperature)
				}
				best := 0
				for c := range votes {
					if votes[c] > votes[best] {
						best = c
					}
				}
				if int32(best) == testLabels[i] {
					correct[w]++
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, c := range correct {
		total += c
	}
	return float64(total) / float64(nt), nil
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

type neighbour struct {
	sim   float32
	label int32
}

// neighbours is a min-heap on similarity: the root is the weakest of the k kept.
type neighbours []neighbour

func (h neighbours) Len() int           { return len(h) }
func (h neighbours) Less(i, j int) bool { return h[i].sim < h[j].sim }
func (h neighbours) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *neighbours) Push(x any)        { *h = append(*h, x.(neighbour)) }
func (h *neighbours) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
