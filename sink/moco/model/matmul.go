package model

import (
	"runtime"
	"sync"
	"weak"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// GoMLX's DotGeneral gradient multiplies broadcast operands and then reduces: for a [M,K]x[K,N]
// product it materialises [M,K,N] on backends that do not fuse it (SimpleGo spends seconds a
// step there). MatMul2D marks its DotGeneral nodes, and the DotGeneral gradient is replaced by one
// that answers marked nodes with two matmuls (dA = dY·Bᵀ, dB = Aᵀ·dY) and hands every other
// DotGeneral to GoMLX's own gradient.
//
// The marks are weak: a graph that is dropped takes its entries with it.
var (
	marked     sync.Map // weak.Pointer[Node] -> struct{}: DotGeneral nodes made by MatMul2D
	installVJP sync.Once
)

// MatMul2D is a [M,K] x [K,N] product whose gradient is two matmuls.
func MatMul2D(a, b *Node) *Node {
	installVJP.Do(func() {
		original := VJPRegistration[NodeTypeDotGeneral]
		VJPRegistration[NodeTypeDotGeneral] = func(node *Node, v []*Node, outputShape shapes.Shape) []*Node {
			if _, ok := marked.Load(weak.Make(node)); !ok {
				return original(node, v, outputShape)
			}
			a, b := node.Inputs()[0], node.Inputs()[1]
			dy := v[0]
			da := DotGeneral(dy, []int{1}, nil, b, []int{1}, nil) // [M,N]x[K,N] -> [M,K]
			db := DotGeneral(a, []int{0}, nil, dy, []int{0}, nil) // [M,K]x[M,N] -> [K,N]
			return []*Node{da, db}
		}
	})
	y := DotGeneral(a, []int{1}, nil, b, []int{0}, nil)
	key := weak.Make(y)
	marked.Store(key, struct{}{})
	runtime.AddCleanup(y, func(key weak.Pointer[Node]) { marked.Delete(key) }, key)
	return y
}
