package device

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// withPadReverse wraps a backend that lacks Pad and Reverse (SimpleGo) and supplies both from
// ops it does have (Slice, Concatenate, Reshape, BroadcastInDim). GoMLX's autodiff emits Pad for
// the gradient of Slice and Reverse for the input gradient of a convolution, so without them no
// convnet can be trained on SimpleGo.
type withPadReverse struct {
	backends.Backend
	caps backends.Capabilities
}

func newWithPadReverse(b backends.Backend) backends.Backend {
	caps := b.Capabilities().Clone()
	caps.Operations[backends.OpTypePad] = true
	caps.Operations[backends.OpTypeReverse] = true
	return &withPadReverse{Backend: b, caps: caps}
}

func (w *withPadReverse) Capabilities() backends.Capabilities { return w.caps }

func (w *withPadReverse) Builder(name string) backends.Builder {
	return &padReverseBuilder{Builder: w.Backend.Builder(name)}
}

type padReverseBuilder struct {
	backends.Builder
}

// Reverse concatenates the unit slices of each axis in reverse order. It is meant for small
// axes (a convolution kernel's spatial axes), where its cost is negligible.
func (b *padReverseBuilder) Reverse(x backends.Op, axes ...int) (backends.Op, error) {
	for _, axis := range axes {
		shape, err := b.OpShape(x)
		if err != nil {
			return nil, err
		}
		n := shape.Dimensions[axis]
		if n <= 1 {
			continue
		}
		parts := make([]backends.Op, n)
		for i := range n {
			starts, limits := fullBox(shape)
			starts[axis], limits[axis] = n-1-i, n-i
			if parts[i], err = b.slice(x, starts, limits); err != nil {
				return nil, fmt.Errorf("reverse axis %d: %w", axis, err)
			}
		}
		if x, err = b.Concatenate(axis, parts...); err != nil {
			return nil, fmt.Errorf("reverse axis %d: %w", axis, err)
		}
	}
	return x, nil
}

// Pad handles one axis at a time: negative edges are slices, interior padding interleaves
// fill values through a reshape, positive edges are concatenated blocks of the fill value.
func (b *padReverseBuilder) Pad(x, fill backends.Op, axesConfig ...backends.PadAxis) (backends.Op, error) {
	for axis, cfg := range axesConfig {
		var err error
		if cfg.Interior > 0 {
			if x, err = b.padInterior(x, fill, axis, cfg.Interior); err != nil {
				return nil, fmt.Errorf("pad axis %d interior: %w", axis, err)
			}
		}
		if x, err = b.padEdges(x, fill, axis, cfg.Start, cfg.End); err != nil {
			return nil, fmt.Errorf("pad axis %d: %w", axis, err)
		}
	}
	return x, nil
}

func fullBox(shape shapes.Shape) (starts, limits []int) {
	starts = make([]int, shape.Rank())
	limits = append([]int(nil), shape.Dimensions...)
	return starts, limits
}

// slice is Slice with unit strides (SimpleGo wants them spelled out).
func (b *padReverseBuilder) slice(x backends.Op, starts, limits []int) (backends.Op, error) {
	strides := make([]int, len(starts))
	for i := range strides {
		strides[i] = 1
	}
	return b.Slice(x, starts, limits, strides)
}

func (b *padReverseBuilder) fillBlock(fill backends.Op, shape shapes.Shape) (backends.Op, error) {
	return b.BroadcastInDim(fill, shape, nil)
}

func (b *padReverseBuilder) padEdges(x, fill backends.Op, axis, start, end int) (backends.Op, error) {
	shape, err := b.OpShape(x)
	if err != nil {
		return nil, err
	}
	if start < 0 || end < 0 {
		starts, limits := fullBox(shape)
		starts[axis] = max(0, -start)
		limits[axis] = shape.Dimensions[axis] - max(0, -end)
		if x, err = b.slice(x, starts, limits); err != nil {
			return nil, err
		}
		if shape, err = b.OpShape(x); err != nil {
			return nil, err
		}
	}
	parts := make([]backends.Op, 0, 3)
	for i, n := range []int{start, 0, end} {
		if i == 1 {
			parts = append(parts, x)
			continue
		}
		if n <= 0 {
			continue
		}
		blockShape := shape.Clone()
		blockShape.Dimensions[axis] = n
		block, err := b.fillBlock(fill, blockShape)
		if err != nil {
			return nil, err
		}
		parts = append(parts, block)
	}
	if len(parts) == 1 {
		return x, nil
	}
	return b.Concatenate(axis, parts...)
}

// padInterior turns [..., n, ...] into [..., n, 1+k, ...] with the fill in the k new slots,
// flattens it to n*(1+k) and drops the trailing k fills.
func (b *padReverseBuilder) padInterior(x, fill backends.Op, axis, k int) (backends.Op, error) {
	shape, err := b.OpShape(x)
	if err != nil {
		return nil, err
	}
	n := shape.Dimensions[axis]
	if n <= 1 {
		return x, nil
	}
	expanded := make([]int, 0, shape.Rank()+1)
	expanded = append(expanded, shape.Dimensions[:axis+1]...)
	expanded = append(expanded, 1)
	expanded = append(expanded, shape.Dimensions[axis+1:]...)
	if x, err = b.Reshape(x, expanded...); err != nil {
		return nil, err
	}
	blockShape := shapes.Make(shape.DType, expanded...)
	blockShape.Dimensions[axis+1] = k
	block, err := b.fillBlock(fill, blockShape)
	if err != nil {
		return nil, err
	}
	if x, err = b.Concatenate(axis+1, x, block); err != nil {
		return nil, err
	}
	flat := append([]int(nil), shape.Dimensions...)
	flat[axis] = n * (1 + k)
	if x, err = b.Reshape(x, flat...); err != nil {
		return nil, err
	}
	flatShape := shapes.Make(shape.DType, flat...)
	starts, limits := fullBox(flatShape)
	limits[axis] = n + (n-1)*k
	return b.slice(x, starts, limits)
}

// ConvGeneral spells out default unit strides and dilations: SimpleGo's shape inference
// rejects empty ones, which is what the convolution gradient passes.
func (b *padReverseBuilder) ConvGeneral(input, kernel backends.Op, axes backends.ConvolveAxesConfig,
	strides []int, paddings [][2]int, inputDilations, kernelDilations []int,
	channelGroupCount, batchGroupCount int) (backends.Op, error) {
	n := len(axes.InputSpatial)
	ones := func(v []int) []int {
		if len(v) != 0 {
			return v
		}
		v = make([]int, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	if len(paddings) == 0 {
		paddings = make([][2]int, n)
	}
	return b.Builder.ConvGeneral(input, kernel, axes, ones(strides), paddings, ones(inputDilations),
		ones(kernelDilations), max(channelGroupCount, 1), max(batchGroupCount, 1))
}
