package model

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"pipeline/sink/moco/device"
)

// normalTensors returns a maker of float32 tensors of standard normal values drawn from rng.
func normalTensors(rng *rand.Rand) func(dims ...int) *tensors.Tensor {
	return func(dims ...int) *tensors.Tensor {
		v := make([]float32, shapes.Make(dtypes.Float32, dims...).Size())
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
}

// The im2col convolution (SimpleGo) equals GoMLX's convolution (XLA) for every kernel and
// stride the encoders use, values and gradients.
func TestIm2colMatchesConvolution(t *testing.T) {
	backend, err := device.Open(device.Go, "")
	if err != nil {
		t.Fatal(err)
	}
	randn := normalTensors(rand.New(rand.NewPCG(5, 6)))
	for _, c := range []struct{ k, stride int }{{1, 1}, {1, 2}, {3, 1}, {3, 2}, {7, 2}} {
		pad := c.k / 2
		exec := MustNewExec(backend, func(x, w *Node) []*Node {
			a := im2colConv(x, w, c.stride, pad)
			b := Convolve(x, w).StridePerAxis(c.stride, c.stride).PaddingPerDim([][2]int{{pad, pad}, {pad, pad}}).Done()
			ga := Gradient(ReduceAllSum(Mul(a, a)), x, w)
			gb := Gradient(ReduceAllSum(Mul(b, b)), x, w)
			return []*Node{a, b, ga[0], gb[0], ga[1], gb[1]}
		})
		out := exec.MustExec(randn(2, 9, 9, 3), randn(c.k, c.k, 3, 4))
		for i := 0; i < len(out); i += 2 {
			x, y := tensors.MustCopyFlatData[float32](out[i]), tensors.MustCopyFlatData[float32](out[i+1])
			for j := range x {
				if math.Abs(float64(x[j]-y[j])) > 1e-3*(1+math.Abs(float64(y[j]))) {
					t.Fatalf("k=%d stride=%d output %d[%d]: im2col %v, convolution %v", c.k, c.stride, i/2, j, x[j], y[j])
				}
			}
		}
	}
}

// MatMul2D's gradient (two matmuls) equals GoMLX's own DotGeneral gradient.
func TestMatMul2DGradient(t *testing.T) {
	backend, err := device.Open(device.Go, "")
	if err != nil {
		t.Fatal(err)
	}
	exec := MustNewExec(backend, func(a, b *Node) []*Node {
		mine := Gradient(ReduceAllSum(Square(MatMul2D(a, b))), a, b)
		theirs := Gradient(ReduceAllSum(Square(DotGeneral(a, []int{1}, nil, b, []int{0}, nil))), a, b)
		return []*Node{mine[0], theirs[0], mine[1], theirs[1]}
	})
	a := tensors.FromFlatDataAndDimensions([]float64{1, 2, 3, 4, 5, 6}, 2, 3)
	b := tensors.FromFlatDataAndDimensions([]float64{0.5, -1, 2, 0.25, -0.75, 1.5}, 3, 2)
	out := exec.MustExec(a, b)
	for i := 0; i < 4; i += 2 {
		x, y := tensors.MustCopyFlatData[float64](out[i]), tensors.MustCopyFlatData[float64](out[i+1])
		for j := range x {
			if math.Abs(x[j]-y[j]) > 1e-12 {
				t.Fatalf("gradient %d[%d]: %v, GoMLX %v", i/2, j, x[j], y[j])
			}
		}
	}
}

// groupedViewBatchNorm is split BN written the direct way, on a grouped [N/S, S, ..., C] view of
// x: the oracle for SplitBatchNorm, which avoids that view for the compiler's sake.
func groupedViewBatchNorm(x, gamma, beta *Node, splits int) *Node {
	dims := x.Shape().Dimensions
	n := dims[0]
	grouped := Reshape(x, append([]int{n / splits, splits}, dims[1:]...)...)
	axes := []int{0}
	for a := 2; a < grouped.Rank()-1; a++ {
		axes = append(axes, a)
	}
	mean := ReduceAndKeep(grouped, ReduceMean, axes...)
	centered := Sub(grouped, mean)
	variance := ReduceAndKeep(Square(centered), ReduceMean, axes...)
	normed := Div(centered, Sqrt(AddScalar(variance, BNEpsilon)))
	return Add(Mul(Reshape(normed, dims...), gamma), beta)
}

// SplitBatchNorm equals the grouped-view formulation in its output and in its gradients with
// respect to x, gamma and beta (weighted by a random cotangent, since the plain sum of a batch
// norm's output has no gradient).
func TestSplitBatchNormMatchesGroupedView(t *testing.T) {
	backend, err := device.Open(device.Go, "")
	if err != nil {
		t.Fatal(err)
	}
	randn := normalTensors(rand.New(rand.NewPCG(7, 8)))
	for _, c := range []struct {
		dims   []int
		splits int
	}{{[]int{8, 3, 5, 4}, 1}, {[]int{8, 3, 5, 4}, 2}, {[]int{8, 3, 5, 4}, 4}, {[]int{12, 6}, 3}} {
		rank := len(c.dims)
		affine := make([]int, rank)
		for i := range affine {
			affine[i] = 1
		}
		affine[rank-1] = c.dims[rank-1]
		exec := MustNewExec(backend, func(x, gamma, beta, cot *Node) []*Node {
			a, _, _ := SplitBatchNorm(x, gamma, beta, c.splits)
			b := groupedViewBatchNorm(x, gamma, beta, c.splits)
			ga := Gradient(ReduceAllSum(Mul(a, cot)), x, gamma, beta)
			gb := Gradient(ReduceAllSum(Mul(b, cot)), x, gamma, beta)
			return []*Node{a, b, ga[0], gb[0], ga[1], gb[1], ga[2], gb[2]}
		})
		out := exec.MustExec(randn(c.dims...), randn(affine...), randn(affine...), randn(c.dims...))
		for i := 0; i < len(out); i += 2 {
			got, want := tensors.MustCopyFlatData[float32](out[i]), tensors.MustCopyFlatData[float32](out[i+1])
			for j := range got {
				if math.Abs(float64(got[j]-want[j])) > 1e-4*(1+math.Abs(float64(want[j]))) {
					t.Fatalf("dims %v, %d splits, %s[%d]: %v, grouped view %v", c.dims, c.splits,
						[]string{"y", "dy/dx", "dy/dgamma", "dy/dbeta"}[i/2], j, got[j], want[j])
				}
			}
		}
	}
}

// MatMul2D's marks do not keep graphs alive: once a graph is dropped, its entries go.
func TestMatMul2DMarksGoWithTheirGraph(t *testing.T) {
	backend, err := device.Open(device.Go, "")
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		n := 0
		marked.Range(func(any, any) bool { n++; return true })
		return n
	}
	before := count()
	func() {
		g := NewGraph(backend, "drop-me")
		a := Parameter(g, "a", shapes.Make(dtypes.Float32, 2, 3))
		b := Parameter(g, "b", shapes.Make(dtypes.Float32, 3, 4))
		for range 5 {
			MatMul2D(a, b)
		}
		if n := count(); n != before+5 {
			t.Fatalf("%d marks after 5 matmuls, want %d", n, before+5)
		}
		g.Finalize()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for count() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d marks left after the graph was dropped, want %d", count(), before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
