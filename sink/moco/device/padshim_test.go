package device

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// The shim exists so that convolution and slice gradients run on SimpleGo: check a strided,
// padded convolution's gradients (which need Reverse and interior Pad) against finite
// differences, in float64.
func TestConvGradientsOnSimpleGo(t *testing.T) {
	backend, err := Open(Go, "")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	randn := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	const n, h, w, cin, cout = 2, 7, 6, 3, 4
	xv, kv, rv := randn(n*h*w*cin), randn(3*3*cin*cout), randn(n*4*3*cout)
	lossOf := func(x, k *Node) *Node {
		y := Convolve(x, k).StridePerAxis(2, 2).PaddingPerDim([][2]int{{1, 1}, {1, 1}}).Done()
		r := Const(x.Graph(), tensors.FromFlatDataAndDimensions(rv, n, 4, 3, cout))
		// A slice in the loss path: its gradient is a Pad.
		y = Slice(Mul(y, r), AxisRange(), AxisRange(1))
		return ReduceAllSum(y)
	}
	exec := MustNewExec(backend, func(x, k *Node) []*Node {
		loss := lossOf(x, k)
		grads := Gradient(loss, x, k)
		return []*Node{loss, grads[0], grads[1]}
	})
	lossExec := MustNewExec(backend, func(x, k *Node) *Node { return lossOf(x, k) })
	eval := func(x, k []float64) float64 {
		out := lossExec.MustExec(tensors.FromFlatDataAndDimensions(x, n, h, w, cin),
			tensors.FromFlatDataAndDimensions(k, 3, 3, cin, cout))
		return out[0].Value().(float64)
	}
	out := exec.MustExec(tensors.FromFlatDataAndDimensions(xv, n, h, w, cin),
		tensors.FromFlatDataAndDimensions(kv, 3, 3, cin, cout))
	gx, gk := tensors.MustCopyFlatData[float64](out[1]), tensors.MustCopyFlatData[float64](out[2])
	check := func(name string, v []float64, grad []float64, at func([]float64) float64) {
		for _, i := range []int{0, 5, len(v) / 3, len(v) / 2, len(v) - 1} {
			const eps = 1e-6
			orig := v[i]
			v[i] = orig + eps
			up := at(v)
			v[i] = orig - eps
			down := at(v)
			v[i] = orig
			num := (up - down) / (2 * eps)
			if math.Abs(num-grad[i]) > 1e-6*(1+math.Abs(num)) {
				t.Errorf("%s[%d]: autodiff %g, finite difference %g", name, i, grad[i], num)
			}
		}
	}
	check("dx", xv, gx, func(x []float64) float64 { return eval(x, kv) })
	check("dk", kv, gk, func(k []float64) float64 { return eval(xv, k) })
}
