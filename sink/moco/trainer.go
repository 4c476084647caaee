package moco

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"pipeline/sink/moco/device"
	"pipeline/sink/moco/model"
)

// Context scopes of the trainer's state.
const (
	scopeQuery  = "q"   // encoder_q: trained
	scopeKey    = "k"   // encoder_k: EMA of encoder_q
	scopeOptim  = "opt" // SGD momentum buffers, one per query parameter
	scopeQueue  = "queue"
	queueVar    = "keys" // [K, dim] unit vectors
	queuePtrVar = "ptr"  // int32 scalar: next row to overwrite
)

// ImageNet normalisation (torchvision ToTensor then Normalize).
const imagenetScale = 255

var (
	imagenetMean = []float32{0.485, 0.456, 0.406}
	imagenetStd  = []float32{0.229, 0.224, 0.225}
)

// Trainer holds the MoCo state on a device and runs training steps. It is not safe for
// concurrent use; Sink gives it one owning goroutine.
type Trainer struct {
	cfg     Config
	arch    model.Arch
	backend backends.Backend
	ctx     *context.Context
	compute dtypes.DType

	batch, height, width int // fixed by the first batch (or a checkpoint)
	step                 int64
	epoch                int
	knnDone              int // 1 + the last epoch the kNN monitor evaluated (0: none); checkpointed

	// nativeConv keeps GoMLX's convolution even on the CPU (tests of the GPU's code path).
	nativeConv bool

	stepExec     *context.Exec
	featuresExec *context.Exec // eval-mode encoder_q output, L2-normalised
	backboneExec *context.Exec // eval-mode encoder_q backbone features
}

// NewTrainer creates the query and key encoders (the key encoder a copy of the query
// encoder), the SGD buffers and a queue of random unit vectors, on backend.
func NewTrainer(cfg Config, backend backends.Backend) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	compute, _ := cfg.computeDType()
	t := &Trainer{cfg: cfg, arch: cfg.Arch(), backend: backend, ctx: context.New(), compute: compute}
	if err := t.createVariables(); err != nil {
		return nil, err
	}
	return t, nil
}

// Step counts the training steps done; Epoch is the epoch of the last one.
func (t *Trainer) Step() int64 { return t.step }
func (t *Trainer) Epoch() int  { return t.epoch }

// Context exposes the variables (for tests and checkpoints).
func (t *Trainer) Context() *context.Context { return t.ctx }

// Backend is the backend the trainer runs on.
func (t *Trainer) Backend() backends.Backend { return t.backend }

// net returns the build settings of one encoder pass.
func (t *Trainer) net(train bool, initFrom *context.Context, rng *rand.Rand) *model.Net {
	return &model.Net{Train: train, BNSplits: t.cfg.BNSplits, Compute: t.compute, InitFrom: initFrom, RNG: rng, Backend: t.backend,
		Im2col: !t.nativeConv && device.KindOf(t.backend) == device.Go, Im2colBelow: im2colBelow(t)}
}

// cpuIm2colBelow: on XLA's CPU plugin, convolutions with fewer output pixels than this go
// through im2col. Its own convolution is fast at 8x8 and above and very slow below (a 3x3 conv
// of 512 channels at 2x2, batch 32: 1.7 s forward). Measured on ResNet-18 at 64², batch 32:
// all native 17-23 s a step, all im2col 0.60-0.65 s, im2col below 64 pixels 0.29-0.31 s; the
// small convnet at 28²: 15, 41-43 and 19-23 ms (docs/trainer.md).
const cpuIm2colBelow = 64

func im2colBelow(t *Trainer) int {
	if t.nativeConv || !device.IsCPU(t.backend) {
		return 0
	}
	return cpuIm2colBelow
}

// createVariables builds both encoders once in a graph that is never compiled: that creates
// every variable with its host-side initial value (seeded, so runs are reproducible).
func (t *Trainer) createVariables() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("building %s encoder: %v", t.cfg.Encoder, r)
		}
	}()
	g := NewGraph(t.backend, "create_variables")
	defer g.Finalize()
	x := Parameter(g, "x", shapes.Make(dtypes.Float32, 2*t.cfg.BNSplits, 32, 32, 3))
	rng := rand.New(rand.NewPCG(t.cfg.Seed, 0x6d6f636f))
	qctx := t.ctx.In(scopeQuery)
	t.arch.Forward(t.net(true, nil, rng), qctx, x)
	t.arch.Forward(t.net(true, qctx, nil), t.ctx.In(scopeKey), x)
	for v := range qctx.IterVariablesInScope() {
		if v.Trainable {
			t.ctx.InAbsPath(optimScope(v)).Checked(false).VariableWithValue(v.Name(), tensors.FromShape(v.Shape())).SetTrainable(false)
		}
	}
	for v := range t.ctx.In(scopeKey).IterVariablesInScope() {
		v.SetTrainable(false) // no gradient, no weight decay, no momentum: only the EMA moves it
	}
	t.ctx.In(scopeQueue).Checked(false).VariableWithValue(queueVar, randomUnitRows(t.cfg.Queue, t.cfg.Dim, rng)).SetTrainable(false)
	t.ctx.In(scopeQueue).Checked(false).VariableWithValue(queuePtrVar, int32(0)).SetTrainable(false)
	return nil
}

// optimScope is where the momentum buffer of a query parameter lives: /opt/<its scope>.
func optimScope(v *context.Variable) string {
	return context.JoinScope("/"+scopeOptim, strings.TrimPrefix(v.Scope(), "/"))
}

// keyTwin is the key-encoder variable matching query variable v.
func (t *Trainer) keyTwin(v *context.Variable) *context.Variable {
	scope := "/" + scopeKey + strings.TrimPrefix(v.Scope(), "/"+scopeQuery)
	return t.ctx.GetVariableByScopeAndName(scope, v.Name())
}

// randomUnitRows is the initial queue: N(0,1) rows, L2-normalised (float64 norm, like
// F.normalize up to rounding).
func randomUnitRows(rows, dim int, rng *rand.Rand) *tensors.Tensor {
	v := make([]float32, rows*dim)
	for r := range rows {
		row := v[r*dim : (r+1)*dim]
		var sum float64
		for i := range row {
			x := rng.NormFloat64()
			row[i] = float32(x)
			sum += float64(row[i]) * float64(row[i])
		}
		norm := float32(max(math.Sqrt(sum), 1e-12))
		for i := range row {
			row[i] /= norm
		}
	}
	return tensors.FromFlatDataAndDimensions(v, rows, dim)
}

// normalizeImages turns uint8 HWC images into ImageNet-normalised float32, in the graph.
func normalizeImages(x *Node) *Node {
	g := x.Graph()
	f := Div(ConvertDType(x, dtypes.Float32), Scalar(g, dtypes.Float32, imagenetScale))
	mean := Const(g, tensors.FromFlatDataAndDimensions(imagenetMean, 1, 1, 1, 3))
	std := Const(g, tensors.FromFlatDataAndDimensions(imagenetStd, 1, 1, 1, 3))
	return Div(Sub(f, mean), std)
}

// StepResult are the figures of one training step.
type StepResult struct {
	Loss     float32
	Accuracy float32 // instance discrimination top-1 over the 1+K logits
	LR       float64
	Keys     *tensors.Tensor // the keys enqueued this step [keysPerStep, dim]
}

// ensureShapes fixes the batch geometry on first use and builds the executables.
func (t *Trainer) ensureShapes(batch, height, width int) error {
	if t.stepExec != nil {
		if batch != t.batch || height != t.height || width != t.width {
			return fmt.Errorf("batch of %dx%dx%d, but training started with %dx%dx%d", batch, height, width, t.batch, t.height, t.width)
		}
		return nil
	}
	if err := t.cfg.checkBatch(batch); err != nil {
		return err
	}
	t.batch, t.height, t.width = batch, height, width
	var err error
	if t.stepExec, err = context.NewExec(t.backend, t.ctx, t.stepGraph); err != nil {
		return fmt.Errorf("train step: %w", err)
	}
	t.stepExec.SetMaxCache(1)
	return nil
}

// TrainStep runs one MoCo step on uint8 views imq, imk [N,H,W,3] (on the device or not) of the
// given epoch, whose cosine learning rate it uses. The first call fixes the batch geometry.
func (t *Trainer) TrainStep(imq, imk *tensors.Tensor, epoch int) (res StepResult, err error) {
	dims := imq.Shape().Dimensions
	if err := t.ensureShapes(dims[0], dims[1], dims[2]); err != nil {
		return res, err
	}
	res.LR = LearningRate(t.cfg, t.batch, epoch)
	perm, inverse := t.permutation()
	outs, err := t.stepExec.Exec(imq, imk, perm, inverse, float32(res.LR))
	if err != nil {
		return res, fmt.Errorf("step %d: %w", t.step, err)
	}
	res.Loss = tensors.ToScalar[float32](outs[0])
	res.Accuracy = tensors.ToScalar[float32](outs[1])
	res.Keys = outs[2]
	t.step++
	t.epoch = epoch
	return res, nil
}

// KNNDue reports whether steps were trained in the current epoch since the kNN monitor last
// evaluated it: a run resumed from a checkpoint taken at an epoch's end still owes that epoch's.
func (t *Trainer) KNNDue() bool { return t.step > 0 && t.knnDone != t.epoch+1 }

// KNNDone records that the kNN monitor evaluated the current epoch.
func (t *Trainer) KNNDone() { t.knnDone = t.epoch + 1 }

// permutation is the key shuffle of the current step: drawn from (seed, step) so that a
// resumed run shuffles exactly like an uninterrupted one.
func (t *Trainer) permutation() (perm, inverse *tensors.Tensor) {
	rng := rand.New(rand.NewPCG(t.cfg.Seed, uint64(t.step)))
	p := make([]int32, t.batch)
	for i := range p {
		p[i] = int32(i)
	}
	rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
	inv := make([]int32, t.batch)
	for i, v := range p {
		inv[v] = int32(i)
	}
	return tensors.FromFlatDataAndDimensions(p, t.batch), tensors.FromFlatDataAndDimensions(inv, t.batch)
}

// stepGraph is one MoCo v2 step (reference section 3.2): momentum update first, queries with
// gradients, ShuffleBN keys, InfoNCE against the queue as it was, SGD on the query encoder,
// then the enqueue.
func (t *Trainer) stepGraph(ctx *context.Context, imq, imk, perm, inverse, lr *Node) []*Node {
	g := imq.Graph()
	qctx, kctx := ctx.In(scopeQuery).Reuse(), ctx.In(scopeKey).Reuse()
	var params []*context.Variable
	for v := range qctx.IterVariablesInScope() {
		if v.Trainable {
			params = append(params, v)
		}
	}
	// 1. θk ← m θk + (1-m) θq, parameters only (BN buffers are not averaged).
	m := Scalar(g, dtypes.Float32, t.cfg.Momentum)
	oneMinusM := Scalar(g, dtypes.Float32, 1-t.cfg.Momentum)
	for _, v := range params {
		kv := t.keyTwin(v)
		kv.SetValueGraph(Add(Mul(m, kv.ValueGraph(g)), Mul(oneMinusM, v.ValueGraph(g))))
	}
	queue := ctx.In(scopeQueue).Reuse().GetVariableByScopeAndName("/"+scopeQueue, queueVar)
	queueNow := queue.ValueGraph(g)

	encodeQ := func(images *Node) *Node {
		return Normalize(t.arch.Forward(t.net(true, nil, nil), qctx, normalizeImages(images)))
	}
	// Keys: shuffle, encode with split BN, unshuffle (single-device ShuffleBN).
	encodeK := func(images *Node) *Node {
		shuffled := Gather(images, InsertAxes(perm, -1))
		k := Normalize(t.arch.Forward(t.net(true, nil, nil), kctx, normalizeImages(shuffled)))
		return StopGradient(Gather(k, InsertAxes(inverse, -1)))
	}
	var loss, acc, keys *Node
	if t.cfg.Symmetric {
		q1, q2 := encodeQ(imq), encodeQ(imk)
		k1, k2 := encodeK(imq), encodeK(imk)
		l12, a12 := InfoNCE(q1, k2, queueNow, t.cfg.Temperature)
		l21, a21 := InfoNCE(q2, k1, queueNow, t.cfg.Temperature)
		loss = Add(l12, l21)
		acc = DivScalar(Add(a12, a21), 2)
		keys = Concatenate([]*Node{k1, k2}, 0)
	} else {
		q := encodeQ(imq)
		keys = encodeK(imk)
		loss, acc = InfoNCE(q, keys, queueNow, t.cfg.Temperature)
	}

	// SGD with momentum and weight decay, on the query parameters only.
	values := make([]*Node, len(params))
	for i, v := range params {
		values[i] = v.ValueGraph(g)
	}
	grads := Gradient(loss, values...)
	for i, v := range params {
		buf := ctx.GetVariableByScopeAndName(optimScope(v), v.Name())
		newValue, newBuf := SGDUpdate(values[i], grads[i], buf.ValueGraph(g), lr, t.cfg.SGDMomentum, t.cfg.WeightDecay)
		buf.SetValueGraph(newBuf)
		v.SetValueGraph(newValue)
	}

	// Enqueue: the rows ptr .. ptr+n-1 take this step's keys; ptr advances by n mod K.
	ptrVar := ctx.GetVariableByScopeAndName("/"+scopeQueue, queuePtrVar)
	ptr := ptrVar.ValueGraph(g)
	n := keys.Shape().Dimensions[0]
	queue.SetValueGraph(Enqueue(queueNow, keys, ptr))
	ptrVar.SetValueGraph(ModScalar(AddScalar(ptr, n), t.cfg.Queue))
	return []*Node{loss, acc, keys}
}

// SGDUpdate is PyTorch's SGD (dampening 0, no Nesterov): g ← ∇ + wd·θ; buf ← μ·buf + g;
// θ ← θ − lr·buf. With buf starting at zero the first step gives buf = g, as in PyTorch.
func SGDUpdate(theta, grad, buf, lr *Node, momentum, weightDecay float64) (newTheta, newBuf *Node) {
	g := theta.Graph()
	grad = Add(grad, Mul(Scalar(g, dtypes.Float32, weightDecay), theta))
	newBuf = Add(Mul(Scalar(g, dtypes.Float32, momentum), buf), grad)
	return Sub(theta, Mul(lr, newBuf)), newBuf
}

// Enqueue writes keys [n, D] into rows ptr .. ptr+n-1 of queue [K, D] (K divisible by n, ptr
// a multiple of n), as a select over [K/n, n, D] blocks: no dynamic-update-slice needed.
func Enqueue(queue, keys, ptr *Node) *Node {
	k, d := queue.Shape().Dimensions[0], queue.Shape().Dimensions[1]
	n := keys.Shape().Dimensions[0]
	blocks := Reshape(queue, k/n, n, d)
	slot := DivScalar(ptr, n)
	which := Iota(queue.Graph(), shapes.Make(ptr.DType(), k/n, n, d), 0)
	fresh := BroadcastToDims(InsertAxes(keys, 0), k/n, n, d)
	return Reshape(Where(Equal(which, slot), fresh, blocks), k, d)
}
