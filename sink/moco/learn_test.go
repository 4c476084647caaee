package moco

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/sink/moco/idxdata"
)

const fashionDir = "/usr/share/datasets/fashion-mnist"

func readFashion(t *testing.T, split string, limit int) *idxdata.Images {
	t.Helper()
	images := filepath.Join(fashionDir, split+"-images-idx3-ubyte.gz")
	if _, err := os.Stat(images); err != nil {
		t.Skipf("Fashion-MNIST not installed: %v", err)
	}
	im, err := idxdata.Read(images, filepath.Join(fashionDir, split+"-labels-idx1-ubyte.gz"), limit)
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// datasetOf serves images [from, to) of im as RGB labelled batches.
func datasetOf(im *idxdata.Images, from, to int) Dataset {
	return func(yield func(LabeledBatch, error) bool) {
		const chunk = 500
		for start := from; start < to; start += chunk {
			end := min(start+chunk, to)
			b := LabeledBatch{N: end - start, H: im.H, W: im.W, Labels: im.Labels[start:end]}
			for i := start; i < end; i++ {
				b.Images = im.RGB(i, b.Images)
			}
			if !yield(b, nil) {
				return
			}
		}
	}
}

// augment is a small stand-in for the pipeline's MoCo views on 28x28 gray images: a random
// resized crop (area 30-100 %, bilinear), a horizontal flip and a brightness/contrast jitter.
func augment(rng *rand.Rand, im *idxdata.Images, i int, dst []uint8) []uint8 {
	h, w := im.H, im.W
	src := im.Pix[i*h*w : (i+1)*h*w]
	scale := 0.3 + 0.7*rng.Float64()
	side := max(8, int(float64(h)*math.Sqrt(scale)))
	top, left := rng.IntN(h-side+1), rng.IntN(w-side+1)
	flip := rng.IntN(2) == 0
	bright := 0.6 + 0.8*rng.Float64()
	contrast := 0.6 + 0.8*rng.Float64()
	for y := range h {
		for x := range w {
			fy := (float64(y)+0.5)*float64(side)/float64(h) - 0.5
			fx := (float64(x)+0.5)*float64(side)/float64(w) - 0.5
			if flip {
				fx = float64(side-1) - fx
			}
			y0, x0 := int(fy), int(fx)
			dy, dx := fy-float64(y0), fx-float64(x0)
			at := func(yy, xx int) float64 {
				yy, xx = min(max(yy, 0), side-1), min(max(xx, 0), side-1)
				return float64(src[(top+yy)*w+left+xx])
			}
			v := (1-dy)*((1-dx)*at(y0, x0)+dx*at(y0, x0+1)) + dy*((1-dx)*at(y0+1, x0)+dx*at(y0+1, x0+1))
			v = ((v*bright)-128)*contrast + 128
			u := uint8(min(max(v, 0), 255))
			dst = append(dst, u, u, u)
		}
	}
	return dst
}

// A short CPU run of MoCo on Fashion-MNIST must give features whose kNN accuracy clearly beats
// the same encoder at initialisation.
func TestLearnsFashionMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("learning run skipped with -short")
	}
	train := readFashion(t, "train", 2048)
	test := readFashion(t, "t10k", 1000)
	eachBackend(t, func(t *testing.T, cfg Config) {
		cfg.Queue = 1024
		cfg.BNSplits = 4
		cfg.Momentum = 0.99
		cfg.LR = 0.24 // 0.06 at batch 64
		cfg.Epochs = 2
		cfg.KNNK = 50
		cfg.LogEvery = 32
		knn := &KNNSplits{Bank: datasetOf(train, 0, 2048), Test: datasetOf(test, 0, 1000)}
		s, err := New(cfg, Options{KNN: knn, Log: testLog{t}})
		if err != nil {
			t.Fatal(err)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		const batch = 64
		rng := rand.New(rand.NewPCG(3, 4))
		order := rng.Perm(train.N)
		for epoch := range cfg.Epochs {
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			for start := 0; start+batch <= len(order); start += batch {
				var q, k []uint8
				labels := make([]int32, batch)
				for j, idx := range order[start : start+batch] {
					q = augment(rng, train, idx, q)
					k = augment(rng, train, idx, k)
					labels[j] = train.Labels[idx]
				}
				if err := s.Write(context.Background(), makeRecord(mem, q, k, batch, train.H, train.W, labels, epoch)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		sum := s.Summary()
		t.Logf("summary: %v", sum)
		initAcc, final := sum["knn_accuracy_at_init"].(float64), sum["knn_accuracy"].(float64)
		if final < initAcc+0.03 {
			t.Errorf("kNN accuracy %.3f after training, %.3f at init: no clear gain", final, initAcc)
		}
	})
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) { l.t.Log(string(p[:len(p)-1])); return len(p), nil }
