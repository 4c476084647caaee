package model

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"pipeline/sink/moco/device"
)

// The im2col convolution (SimpleGo) equals GoMLX's convolution (XLA) for every kernel and
// stride the encoders use, values and gradients.
func TestIm2colMatchesConvolution(t *testing.T) {
	backend, err := device.Open(device.Go, "")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	randn := func(dims ...int) *tensors.Tensor {
		n := 1
		for _, d := range dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
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
