// Package model builds MoCo encoders as GoMLX graphs: ResNet-18/50 with an ImageNet or CIFAR
// stem, a small convnet for quick runs, the MLP (or v1 fc) head, and batch norm split into
// interleaved groups (single-device ShuffleBN). Parameters live in a GoMLX context; the first
// build creates and initialises them on the host, later builds reuse them.
package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// BNMomentum and BNEpsilon are PyTorch's BatchNorm defaults.
const (
	BNMomentum = 0.1
	BNEpsilon  = 1e-5
)

// Net carries what one build of an encoder needs besides its input.
type Net struct {
	// Train selects batch statistics (split in BNSplits interleaved groups) and updates the
	// running statistics; otherwise batch norm uses the running statistics.
	Train    bool
	BNSplits int
	// Compute is the dtype of convolutions and matmuls (float32 or bfloat16); parameters,
	// batch norm and the loss stay in float32.
	Compute dtypes.DType
	// InitFrom, if set, is the scope whose variables initialise this build's missing variables
	// (the key encoder starts as a copy of the query encoder).
	InitFrom *context.Context
	// RNG draws the initial values of new variables (torchvision's initialisation).
	RNG *rand.Rand
	// Backend decides whether max-pool can use the native op (it needs SelectAndScatter for
	// its gradient).
	Backend backends.Backend
	// Im2col lowers convolutions to strided slices and one matmul: SimpleGo's own convolution
	// is a naive loop, tens of times slower than its matmul.
	Im2col bool
	// Im2colBelow lowers only the convolutions whose output has fewer pixels than that: XLA's
	// CPU convolution is slow at small spatial sizes (docs/trainer.md).
	Im2colBelow int

	root string // the scope the encoder is built in; InitFrom's scope replaces it
}

// variable returns the variable name in ctx's scope, creating it with init() (or a copy of
// the InitFrom scope's variable of the same relative name) on first use.
func (n *Net) variable(ctx *context.Context, name string, trainable bool, init func() *tensors.Tensor) *Variable {
	if v := ctx.GetVariableByScopeAndName(ctx.Scope(), name); v != nil {
		return v
	}
	var value *tensors.Tensor
	if n.InitFrom != nil {
		rel := ctx.Scope()[len(n.root):]
		src := n.InitFrom.GetVariableByScopeAndName(n.InitFrom.Scope()+rel, name)
		if src == nil {
			panic(fmt.Sprintf("model: no variable %s/%s to initialise %s/%s from", n.InitFrom.Scope()+rel, name, ctx.Scope(), name))
		}
		var err error
		if value, err = src.MustValue().Clone(); err != nil {
			panic(fmt.Sprintf("model: copying %s: %v", src.ScopeAndName(), err))
		}
	} else {
		value = init()
	}
	v := ctx.Checked(false).VariableWithValue(name, value)
	v.SetTrainable(trainable)
	return v
}

// Variable is GoMLX's context variable.
type Variable = context.Variable

func (n *Net) uniform(bound float64, dims ...int) func() *tensors.Tensor {
	return func() *tensors.Tensor {
		size := shapes.Make(dtypes.Float32, dims...).Size()
		v := make([]float32, size)
		for i := range v {
			v[i] = float32((n.RNG.Float64()*2 - 1) * bound)
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
}

func (n *Net) normal(std float64, dims ...int) func() *tensors.Tensor {
	return func() *tensors.Tensor {
		size := shapes.Make(dtypes.Float32, dims...).Size()
		v := make([]float32, size)
		for i := range v {
			v[i] = float32(n.RNG.NormFloat64() * std)
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
}

func filled(value float32, dims ...int) func() *tensors.Tensor {
	return func() *tensors.Tensor {
		size := shapes.Make(dtypes.Float32, dims...).Size()
		v := make([]float32, size)
		for i := range v {
			v[i] = value
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
}

func (n *Net) compute(x *Node) *Node {
	if n.Compute == dtypes.InvalidDType || x.DType() == n.Compute {
		return x
	}
	return ConvertDType(x, n.Compute)
}

// Conv is a bias-free convolution, channels last, with torchvision's Kaiming-normal
// (fan_out) initialisation. Padding is symmetric, k/2 like torchvision's ResNets.
func (n *Net) Conv(ctx *context.Context, x *Node, outChannels, kernel, stride int) *Node {
	inChannels := x.Shape().Dimensions[x.Rank()-1]
	std := math.Sqrt(2 / float64(outChannels*kernel*kernel))
	w := n.variable(ctx, "weight", true, n.normal(std, kernel, kernel, inChannels, outChannels)).ValueGraph(x.Graph())
	pad := kernel / 2
	outH := (x.Shape().Dimensions[1]+2*pad-kernel)/stride + 1
	outW := (x.Shape().Dimensions[2]+2*pad-kernel)/stride + 1
	if n.Im2col || outH*outW < n.Im2colBelow {
		return ConvertDType(im2colConv(n.compute(x), n.compute(w), stride, pad), dtypes.Float32)
	}
	y := Convolve(n.compute(x), n.compute(w)).StridePerAxis(stride, stride).
		PaddingPerDim([][2]int{{pad, pad}, {pad, pad}}).Done()
	return ConvertDType(y, dtypes.Float32)
}

// im2colConv is a convolution of x [N,H,W,C] with w [k,k,C,O] (stride, symmetric zero padding)
// as a concatenation of k*k strided slices of the padded input and one matmul.
func im2colConv(x, w *Node, stride, pad int) *Node {
	dims := x.Shape().Dimensions
	nb, h, wd, c := dims[0], dims[1], dims[2], dims[3]
	k, out := w.Shape().Dimensions[0], w.Shape().Dimensions[3]
	if pad > 0 {
		zerosRows := Zeros(x.Graph(), shapes.Make(x.DType(), nb, pad, wd, c))
		x = Concatenate([]*Node{zerosRows, x, zerosRows}, 1)
		zerosCols := Zeros(x.Graph(), shapes.Make(x.DType(), nb, h+2*pad, pad, c))
		x = Concatenate([]*Node{zerosCols, x, zerosCols}, 2)
	}
	outH := (h+2*pad-k)/stride + 1
	outW := (wd+2*pad-k)/stride + 1
	if k == 1 && stride == 1 {
		return Reshape(MatMul2D(Reshape(x, nb*h*wd, c), Reshape(w, c, out)), nb, h, wd, out)
	}
	patches := make([]*Node, 0, k*k)
	for i := range k {
		for j := range k {
			patches = append(patches, Slice(x, AxisRange(),
				AxisRange(i, i+stride*(outH-1)+1).Stride(stride),
				AxisRange(j, j+stride*(outW-1)+1).Stride(stride), AxisRange()))
		}
	}
	cols := Concatenate(patches, 3) // [N, outH, outW, k*k*C], ordered (i, j, c) like w
	rows := nb * outH * outW
	return Reshape(MatMul2D(Reshape(cols, rows, k*k*c), Reshape(w, k*k*c, out)), nb, outH, outW, out)
}

// Dense is PyTorch's nn.Linear: uniform(±1/sqrt(fan_in)) weight and bias.
func (n *Net) Dense(ctx *context.Context, x *Node, out int) *Node {
	in := x.Shape().Dimensions[1]
	bound := 1 / math.Sqrt(float64(in))
	w := n.variable(ctx, "weight", true, n.uniform(bound, in, out)).ValueGraph(x.Graph())
	b := n.variable(ctx, "bias", true, n.uniform(bound, out)).ValueGraph(x.Graph())
	y := ConvertDType(MatMul2D(n.compute(x), n.compute(w)), dtypes.Float32)
	return Add(y, channelsLast(b, 2))
}

// BatchNorm normalises over every axis but the last. In training mode the batch is split into
// BNSplits groups, sample i in group i mod BNSplits, each normalised with its own statistics
// (the MoCo CIFAR demo's SplitBatchNorm); the running statistics move towards the mean over
// groups of each group's mean and unbiased variance. The statistics are differentiated through.
func (n *Net) BatchNorm(ctx *context.Context, x *Node) *Node {
	g := x.Graph()
	dims := x.Shape().Dimensions
	c := dims[len(dims)-1]
	gamma := channelsLast(n.variable(ctx, "gamma", true, filled(1, c)).ValueGraph(g), x.Rank())
	beta := channelsLast(n.variable(ctx, "beta", true, filled(0, c)).ValueGraph(g), x.Rank())
	runMeanVar := n.variable(ctx, "running_mean", false, filled(0, c))
	runVarVar := n.variable(ctx, "running_var", false, filled(1, c))
	eps := Scalar(g, dtypes.Float32, BNEpsilon)
	if !n.Train {
		scale := Div(gamma, Sqrt(Add(channelsLast(runVarVar.ValueGraph(g), x.Rank()), eps)))
		return Add(Mul(Sub(x, channelsLast(runMeanVar.ValueGraph(g), x.Rank())), scale), beta)
	}
	y, mean, variance := SplitBatchNorm(x, gamma, beta, n.splits())
	count := float64(dims[0] / n.splits())
	for _, d := range dims[1 : len(dims)-1] {
		count *= float64(d)
	}
	unbiased := MulScalar(variance, count/math.Max(count-1, 1))
	momentum := Scalar(g, dtypes.Float32, BNMomentum)
	keep := Scalar(g, dtypes.Float32, 1-BNMomentum)
	runMeanVar.SetValueGraph(StopGradient(Add(Mul(keep, runMeanVar.ValueGraph(g)), Mul(momentum, ReduceMean(mean, 0)))))
	runVarVar.SetValueGraph(StopGradient(Add(Mul(keep, runVarVar.ValueGraph(g)), Mul(momentum, ReduceMean(unbiased, 0)))))
	return y
}

func (n *Net) splits() int { return max(n.BNSplits, 1) }

// channelsLast reshapes a per-channel vector [C] to [1, ..., 1, C] of the given rank.
func channelsLast(v *Node, rank int) *Node {
	dims := make([]int, rank)
	for i := range dims {
		dims[i] = 1
	}
	dims[rank-1] = v.Shape().Dimensions[0]
	return Reshape(v, dims...)
}

// SplitBatchNorm normalises x ([N, ..., C]) in `splits` interleaved groups (sample i in group
// i mod splits) and returns the output with each group's mean and biased variance ([splits, C]).
// gamma and beta are [1, ..., 1, C] of x's rank.
//
// Every full-size tensor keeps x's shape: the sums go per sample over the spatial axes, then
// over each group's samples on small [N/S, S, C] tensors, and the statistics go back to
// [N, 1, ..., 1, C], one row per sample. The gradient then has only the same per-sample
// reductions. A grouped [N/S, S, H, W, C] view of x would give the gradient a reduction over
// its axes {0, 2, 3}, kept axes apart, which XLA's GPU compiler took minutes over. With one
// split it is plain BN, reducing over every axis but the channels at once.
func SplitBatchNorm(x, gamma, beta *Node, splits int) (y, mean, variance *Node) {
	dims := x.Shape().Dimensions
	n, c := dims[0], dims[len(dims)-1]
	if n%splits != 0 {
		panic(fmt.Sprintf("model: batch %d is not divisible by bn_splits %d", n, splits))
	}
	eps := Scalar(x.Graph(), dtypes.Float32, BNEpsilon)
	if splits == 1 {
		// Plain BN: one reduction over every axis but the channels.
		axes := make([]int, len(dims)-1)
		for i := range axes {
			axes[i] = i
		}
		mean = ReduceAndKeep(x, ReduceMean, axes...)
		centered := Sub(x, mean)
		variance = ReduceAndKeep(Square(centered), ReduceMean, axes...)
		y = Add(Mul(Div(centered, Sqrt(Add(variance, eps))), gamma), beta)
		return y, Reshape(mean, 1, c), Reshape(variance, 1, c)
	}
	spatial := make([]int, 0, len(dims)-2)
	count := float64(n / splits)
	for a := 1; a < len(dims)-1; a++ {
		spatial = append(spatial, a)
		count *= float64(dims[a])
	}
	// groupMean sums v ([N, ..., C]) per group and divides by the group's element count.
	groupMean := func(v *Node) *Node {
		perSample := v
		if len(spatial) > 0 {
			perSample = ReduceSum(v, spatial...) // [N, C]
		}
		return DivScalar(ReduceSum(Reshape(perSample, n/splits, splits, c), 0), count) // [S, C]
	}
	// perSample repeats group statistics [S, C] for every sample, as [N, 1, ..., 1, C].
	sampleDims := make([]int, len(dims))
	for i := range sampleDims {
		sampleDims[i] = 1
	}
	sampleDims[0], sampleDims[len(dims)-1] = n, c
	perSample := func(stat *Node) *Node {
		return Reshape(BroadcastToDims(Reshape(stat, 1, splits, c), n/splits, splits, c), sampleDims...)
	}
	mean = groupMean(x)
	centered := Sub(x, perSample(mean))
	variance = groupMean(Square(centered))
	normed := Div(centered, perSample(Sqrt(Add(variance, eps))))
	y = Add(Mul(normed, gamma), beta)
	return y, mean, variance
}

// MaxPool3x3s2 is ResNet's stem pool (3x3, stride 2, padding 1). Where the backend lacks
// SelectAndScatter (SimpleGo) it is the max of nine strided slices, whose gradient needs only
// Pad.
func (n *Net) MaxPool3x3s2(x *Node) *Node {
	if n.Backend != nil && n.Backend.Capabilities().Operations[backends.OpTypeSelectAndScatterMax] {
		return MaxPool(x).Window(3).Strides(2).PaddingPerDim([][2]int{{1, 1}, {1, 1}}).Done()
	}
	dims := x.Shape().Dimensions
	h, w := dims[1], dims[2]
	negInf := Infinity(x.Graph(), x.DType(), -1)
	padRows := BroadcastToDims(negInf, dims[0], 1, w, dims[3])
	x = Concatenate([]*Node{padRows, x, padRows}, 1)
	padCols := BroadcastToDims(negInf, dims[0], h+2, 1, dims[3])
	x = Concatenate([]*Node{padCols, x, padCols}, 2)
	outH, outW := (h-1)/2+1, (w-1)/2+1
	var out *Node
	for i := range 3 {
		for j := range 3 {
			s := Slice(x, AxisRange(), AxisRange(i, i+2*(outH-1)+1).Stride(2), AxisRange(j, j+2*(outW-1)+1).Stride(2), AxisRange())
			if out == nil {
				out = s
			} else {
				out = Max(out, s)
			}
		}
	}
	return out
}
