package moco

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"pipeline/sink/moco/device"
	"pipeline/sink/moco/model"
)

func goBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := device.Open(device.Go, "")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The InfoNCE graph equals the loss computed by hand, in float64, on fixed unit vectors.
func TestInfoNCEMatchesHandComputed(t *testing.T) {
	q := [][]float64{{1, 0, 0}, {0.6, 0.8, 0}}
	k := [][]float64{{0.8, 0.6, 0}, {0, 0, 1}}
	queue := [][]float64{{0, 1, 0}, {0, 0.6, 0.8}, {-1, 0, 0}, {0.6, 0, 0.8}}
	const temp = 0.2
	var want float64
	for n := range q {
		dot := func(a, b []float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
		pos := dot(q[n], k[n]) / temp
		sum := math.Exp(pos)
		for _, neg := range queue {
			sum += math.Exp(dot(q[n], neg) / temp)
		}
		want += (math.Log(sum) - pos) / float64(len(q))
	}
	flat := func(rows [][]float64) *tensors.Tensor {
		var v []float32
		for _, r := range rows {
			for _, x := range r {
				v = append(v, float32(x))
			}
		}
		return tensors.FromFlatDataAndDimensions(v, len(rows), 3)
	}
	exec := MustNewExec(goBackend(t), func(q, k, queue *Node) []*Node {
		loss, acc := InfoNCE(q, k, queue, temp)
		return []*Node{loss, acc}
	})
	out := exec.MustExec(flat(q), flat(k), flat(queue))
	got := float64(tensors.ToScalar[float32](out[0]))
	if math.Abs(got-want) > 1e-5 {
		t.Errorf("InfoNCE loss %.7f, hand-computed %.7f", got, want)
	}
	// Row 0: positive 0.8 beats every negative (max 0.6); row 1: positive 0 loses to 0.6.
	if acc := tensors.ToScalar[float32](out[1]); acc != 0.5 {
		t.Errorf("instance accuracy %g, want 0.5", acc)
	}
}

func variableValues(t testing.TB, ctx *context.Context, scope string) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for v := range ctx.IterVariables() {
		if !strings.HasPrefix(v.Scope(), scope) || v.DType().String() != "Float32" {
			continue
		}
		out[strings.TrimPrefix(v.Scope(), scope)+"/"+v.Name()] = tensors.MustCopyFlatData[float32](v.MustValue())
	}
	return out
}

// ulp is the spacing of float32 numbers at x.
func ulp(x float32) float64 {
	a := math.Abs(float64(x))
	return float64(math.Nextafter32(float32(a), float32(math.Inf(1)))) - a
}

// The key encoder moves by θk ← mθk + (1-m)θq with the query weights before the SGD step, bit
// for bit on SimpleGo and within one float32 rounding on XLA (whose CPU compiler fuses the
// multiply-add): no gradient, weight decay or momentum reaches it. Only query parameters have
// optimizer buffers.
func TestKeyEncoderIsExactEMA(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		cfg.Momentum = 0.9 // large enough that a wrong formula shows
		cfg.WeightDecay = 0.1
		tr := newTestTrainer(t, cfg)
		if _, err := tr.TrainStep(randomViews(1, 4, 8, 8), randomViews(2, 4, 8, 8), 0); err != nil {
			t.Fatal(err)
		}
		// Second step: now θq differs from θk, so the EMA is not trivially a copy.
		qBefore := variableValues(t, tr.Context(), "/q")
		kBefore := variableValues(t, tr.Context(), "/k")
		if _, err := tr.TrainStep(randomViews(3, 4, 8, 8), randomViews(4, 4, 8, 8), 0); err != nil {
			t.Fatal(err)
		}
		kAfter := variableValues(t, tr.Context(), "/k")
		m, om := float32(cfg.Momentum), float32(1-cfg.Momentum)
		params, buffers := 0, 0
		for v := range tr.Context().IterVariables() {
			switch {
			case strings.HasPrefix(v.Scope(), "/k") && v.Trainable:
				t.Errorf("key variable %s is trainable", v.ScopeAndName())
			case strings.HasPrefix(v.Scope(), "/q") && v.Trainable:
				params++
			case strings.HasPrefix(v.Scope(), "/opt"):
				buffers++
			}
		}
		if params == 0 || buffers != params {
			t.Errorf("%d query parameters, %d optimizer buffers: want one buffer per query parameter", params, buffers)
		}
		checked := 0
		for name, k0 := range kBefore {
			if strings.Contains(name, "running_") {
				continue // BN buffers are not averaged
			}
			q0, k1 := qBefore[name], kAfter[name]
			for i := range k0 {
				want := float32(m*k0[i]) + float32(om*q0[i])
				ulps := 0.0 // SimpleGo: the same two roundings
				if cfg.Backend == device.XLA {
					ulps = 1
				}
				if diff := math.Abs(float64(k1[i] - want)); diff > ulps*ulp(want) {
					t.Fatalf("%s[%d]: key %v, EMA %v (%s)", name, i, k1[i], want, cfg.Backend)
				}
			}
			checked++
		}
		if checked < 6 {
			t.Errorf("only %d key parameters checked", checked)
		}
	})
}

// The queue takes each step's keys at the pointer, which advances by the batch and wraps at K.
func TestQueuePointerWrapsAround(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		cfg.Queue = 8
		tr := newTestTrainer(t, cfg)
		queueRows := func() []float32 {
			return tensors.MustCopyFlatData[float32](tr.Context().GetVariableByScopeAndName("/queue", queueVar).MustValue())
		}
		ptr := func() int32 {
			return tensors.ToScalar[int32](tr.Context().GetVariableByScopeAndName("/queue", queuePtrVar).MustValue())
		}
		initial := queueRows()
		dim := cfg.Dim
		var keys [][]float32
		for step := range 3 {
			res, err := tr.TrainStep(randomViews(uint64(10+step), 4, 8, 8), randomViews(uint64(20+step), 4, 8, 8), 0)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, tensors.MustCopyFlatData[float32](res.Keys))
			if want := int32((step + 1) * 4 % 8); ptr() != want {
				t.Fatalf("after step %d ptr = %d, want %d", step+1, ptr(), want)
			}
		}
		rows := queueRows()
		equal := func(a, b []float32) bool {
			for i := range a {
				if a[i] != b[i] {
					return false
				}
			}
			return true
		}
		if !equal(rows[:4*dim], keys[2]) {
			t.Error("rows 0-3 do not hold the third step's keys after the wrap")
		}
		if !equal(rows[4*dim:], keys[1]) {
			t.Error("rows 4-7 do not hold the second step's keys")
		}
		if equal(rows[:4*dim], initial[:4*dim]) {
			t.Error("queue unchanged")
		}
		for r := range 8 {
			var norm float64
			for _, x := range rows[r*dim : (r+1)*dim] {
				norm += float64(x) * float64(x)
			}
			if math.Abs(norm-1) > 1e-5 {
				t.Errorf("queue row %d has norm² %g, want 1", r, norm)
			}
		}
	})
}

func TestSGDUpdateIsPyTorchSGD(t *testing.T) {
	exec := MustNewExec(goBackend(t), func(theta, grad, buf, lr *Node) []*Node {
		nt, nb := SGDUpdate(theta, grad, buf, lr, 0.9, 0.1)
		return []*Node{nt, nb}
	})
	f := func(v ...float32) *tensors.Tensor { return tensors.FromFlatDataAndDimensions(v, len(v)) }
	out := exec.MustExec(f(1, -2), f(0.5, 0.25), f(0, 1), float32(0.1))
	// g = ∇ + 0.1θ = (0.6, 0.05); buf = 0.9·buf + g = (0.6, 0.95); θ - 0.1·buf = (0.94, -2.095)
	wantTheta, wantBuf := []float32{0.94, -2.095}, []float32{0.6, 0.95}
	gotTheta, gotBuf := tensors.MustCopyFlatData[float32](out[0]), tensors.MustCopyFlatData[float32](out[1])
	for i := range 2 {
		if math.Abs(float64(gotTheta[i]-wantTheta[i])) > 1e-6 || math.Abs(float64(gotBuf[i]-wantBuf[i])) > 1e-6 {
			t.Errorf("SGD: θ %v buf %v, want %v %v", gotTheta, gotBuf, wantTheta, wantBuf)
		}
	}
}

func TestCosineScheduleIsPerEpoch(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Epochs = 200
	if got := LearningRate(cfg, 256, 0); got != 0.03 {
		t.Errorf("epoch 0: %g, want 0.03", got)
	}
	if got := LearningRate(cfg, 512, 0); got != 0.06 {
		t.Errorf("batch 512: %g, want 0.06 (linear scaling)", got)
	}
	if got, want := LearningRate(cfg, 256, 100), 0.015; math.Abs(got-want) > 1e-15 {
		t.Errorf("epoch 100 of 200: %g, want %g", got, want)
	}
	// The reference: the last epoch of 200 uses 0.03 × 6.17e-5.
	if got := LearningRate(cfg, 256, 199) / 0.03; math.Abs(got-6.17e-5) > 0.005e-5 {
		t.Errorf("epoch 199: factor %g, want 6.17e-5", got)
	}
	for e := range 200 {
		want := 0.03 * 0.5 * (1 + math.Cos(math.Pi*float64(e)/200))
		if got := LearningRate(cfg, 256, e); got != want {
			t.Fatalf("epoch %d: %g, want %g", e, got, want)
		}
	}
	cfg.Cosine = false
	if got := LearningRate(cfg, 256, 150); got != 0.03 {
		t.Errorf("no cosine: %g", got)
	}
}

// Split BN normalises sample n with the statistics of group n mod S.
func TestSplitBatchNormInterleavedGroups(t *testing.T) {
	x := []float32{1, 10, 2, 20, 3, 30, 4, 40, 5, 50, 6, 60} // [6 samples, 1, 1, 2 channels]
	const splits = 2
	exec := MustNewExec(goBackend(t), func(x *Node) []*Node {
		g := x.Graph()
		gamma := Const(g, tensors.FromFlatDataAndDimensions([]float32{1, 1}, 1, 1, 1, 2))
		beta := Const(g, tensors.FromFlatDataAndDimensions([]float32{0, 0}, 1, 1, 1, 2))
		y, mean, variance := model.SplitBatchNorm(x, gamma, beta, splits)
		return []*Node{y, mean, variance}
	})
	out := exec.MustExec(tensors.FromFlatDataAndDimensions(x, 6, 1, 1, 2))
	y := tensors.MustCopyFlatData[float32](out[0])
	mean := tensors.MustCopyFlatData[float32](out[1])
	// Group 0 = samples 0, 2, 4 (channel 0: 1, 3, 5); group 1 = samples 1, 3, 5 (2, 4, 6).
	wantMean := []float32{3, 30, 4, 40}
	for i := range wantMean {
		if math.Abs(float64(mean[i]-wantMean[i])) > 1e-5 {
			t.Fatalf("group means %v, want %v", mean, wantMean)
		}
	}
	std := math.Sqrt(8.0/3 + model.BNEpsilon) // biased variance of {1,3,5}
	for n := range 6 {
		group := n % splits
		want := (float64(x[2*n]) - float64(wantMean[2*group])) / std
		if math.Abs(float64(y[2*n])-want) > 1e-5 {
			t.Errorf("sample %d: %g, want %g", n, y[2*n], want)
		}
	}
}

// A checkpoint restores every variable bit for bit, and a resumed run continues the same loss
// curve as the uninterrupted one.
func TestCheckpointRoundTripAndResume(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		dir := t.TempDir()
		batch := func(i int) (*tensors.Tensor, *tensors.Tensor) {
			return randomViews(uint64(100+i), 4, 8, 8), randomViews(uint64(200+i), 4, 8, 8)
		}
		a := newTestTrainer(t, cfg)
		for i := range 2 {
			q, k := batch(i)
			if _, err := a.TrainStep(q, k, 0); err != nil {
				t.Fatal(err)
			}
		}
		path, err := a.Save(dir, []byte("position-2"))
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(path) != dir {
			t.Fatalf("checkpoint at %s", path)
		}
		b := newTestTrainer(t, cfg)
		state, err := b.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(state) != "position-2" || b.Step() != 2 {
			t.Fatalf("restored pipeline state %q at step %d", state, b.Step())
		}
		for v := range a.Context().IterVariables() {
			w := b.Context().GetVariableByScopeAndName(v.Scope(), v.Name())
			var x, y []byte
			v.MustValue().ConstBytes(func(d []byte) { x = append(x, d...) })
			w.MustValue().ConstBytes(func(d []byte) { y = append(y, d...) })
			if string(x) != string(y) {
				t.Fatalf("variable %s differs after the round trip", v.ScopeAndName())
			}
		}
		for i := 2; i < 5; i++ {
			q, k := batch(i)
			ra, err := a.TrainStep(q, k, 1)
			if err != nil {
				t.Fatal(err)
			}
			q, k = batch(i)
			rb, err := b.TrainStep(q, k, 1)
			if err != nil {
				t.Fatal(err)
			}
			if ra.Loss != rb.Loss {
				t.Fatalf("step %d: uninterrupted loss %v, resumed %v", i, ra.Loss, rb.Loss)
			}
		}
	})
}

func TestKNNClassifyWeightedVote(t *testing.T) {
	// 2-d unit features: two classes clustered at 0° and 90°.
	bank := []float32{1, 0, 0.98, 0.199, 0, 1, 0.199, 0.98}
	labels := []int32{0, 0, 1, 1}
	test := []float32{0.96, 0.28, 0.28, 0.96}
	acc, err := KNNClassify(bank, labels, test, []int32{0, 1}, 2, 3, 0.1)
	if err != nil || acc != 1 {
		t.Errorf("accuracy %g, err %v: want 1", acc, err)
	}
	acc, _ = KNNClassify(bank, labels, test, []int32{1, 0}, 2, 3, 0.1)
	if acc != 0 {
		t.Errorf("swapped labels: accuracy %g, want 0", acc)
	}
}

// The raw-pixel vote compares images by the cosine of their channel-averaged pixels: the
// brightness of an image does not matter, its pattern does, and colour only through its mean.
func TestPixelKNNComparesPixelPatterns(t *testing.T) {
	// 1x2 images: class 0 bright left, class 1 bright right (RGB triples).
	img := func(left, right [3]uint8) []uint8 { return append(left[:], right[:]...) }
	split := func(images [][]uint8, labels []int32) Dataset {
		return func(yield func(LabeledBatch, error) bool) {
			yield(LabeledBatch{Images: slices.Concat(images...), N: len(images), H: 1, W: 2, Labels: labels}, nil)
		}
	}
	bank := split([][]uint8{img([3]uint8{200, 200, 200}, [3]uint8{10, 10, 10}), img([3]uint8{10, 10, 10}, [3]uint8{200, 200, 200})}, []int32{0, 1})
	// A dim left-bright image, and a right-bright one whose bright pixel is pure red.
	test := split([][]uint8{img([3]uint8{40, 40, 40}, [3]uint8{2, 2, 2}), img([3]uint8{0, 0, 0}, [3]uint8{255, 0, 0})}, []int32{0, 1})
	acc, err := PixelKNNAccuracy(KNNSplits{Bank: bank, Test: test}, 1, 0.1)
	if err != nil || acc != 1 {
		t.Errorf("accuracy %g, err %v: want 1", acc, err)
	}
	swapped := split([][]uint8{img([3]uint8{40, 40, 40}, [3]uint8{2, 2, 2})}, []int32{1})
	if acc, _ := PixelKNNAccuracy(KNNSplits{Bank: bank, Test: swapped}, 1, 0.1); acc != 0 {
		t.Errorf("wrong label: accuracy %g, want 0", acc)
	}
	wide := func(yield func(LabeledBatch, error) bool) {
		yield(LabeledBatch{Images: make([]uint8, 9), N: 1, H: 1, W: 3, Labels: []int32{0}}, nil)
	}
	if _, err := PixelKNNAccuracy(KNNSplits{Bank: bank, Test: wide}, 1, 0.1); err == nil {
		t.Error("test images of another size accepted")
	}
}

// The symmetric loss enqueues the keys of both directions (2N) and sums two InfoNCE terms.
func TestSymmetricStepEnqueuesBothKeySets(t *testing.T) {
	cfg := tinyConfig()
	cfg.Symmetric = true
	tr := newTestTrainer(t, cfg)
	res, err := tr.TrainStep(randomViews(1, 4, 8, 8), randomViews(2, 4, 8, 8), 0)
	if err != nil {
		t.Fatal(err)
	}
	if dims := res.Keys.Shape().Dimensions; dims[0] != 8 {
		t.Errorf("enqueued %v keys, want 8", dims)
	}
	if ptr := tensors.ToScalar[int32](tr.Context().GetVariableByScopeAndName("/queue", queuePtrVar).MustValue()); ptr != 8 {
		t.Errorf("ptr %d after one symmetric step of 4, want 8", ptr)
	}
	single := newTestTrainer(t, tinyConfig())
	one, err := single.TrainStep(randomViews(1, 4, 8, 8), randomViews(2, 4, 8, 8), 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Loss < 1.5*one.Loss {
		t.Errorf("symmetric loss %v is not a sum of two terms (one direction: %v)", res.Loss, one.Loss)
	}
	cfg.Queue = 12 // not divisible by 2N = 8
	bad := newTestTrainer(t, cfg)
	if _, err := bad.TrainStep(randomViews(1, 4, 8, 8), randomViews(2, 4, 8, 8), 0); err == nil || !strings.Contains(err.Error(), "divisible") {
		t.Errorf("queue 12 with 8 keys a step: error %v", err)
	}
}

// A checkpoint whose queue pointer sits inside a block of the keys this config enqueues per step
// (here: saved without `symmetric`, resumed with it) is refused, not resumed with misplaced keys.
func TestLoadRefusesQueuePointerInsideAStep(t *testing.T) {
	cfg := tinyConfig()
	cfg.Queue = 16
	a := newTestTrainer(t, cfg)
	if _, err := a.TrainStep(randomViews(1, 4, 8, 8), randomViews(2, 4, 8, 8), 0); err != nil {
		t.Fatal(err)
	}
	path, err := a.Save(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Symmetric = true
	if _, err := newTestTrainer(t, cfg).Load(path); err == nil || !strings.Contains(err.Error(), "queue pointer 4") {
		t.Fatalf("resuming ptr 4 with 8 keys a step: error %v", err)
	}
	cfg.Symmetric = false
	if _, err := newTestTrainer(t, cfg).Load(path); err != nil {
		t.Fatalf("resuming with the same config: %v", err)
	}
}
