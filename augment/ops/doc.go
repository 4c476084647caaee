// Package ops holds the pixel kernels of the augmentations, on packed 8-bit RGB images
// (pipeline.Image). Each kernel reproduces the integer semantics of Pillow 9.4 as torchvision
// 0.14 calls it on PIL images (see shared/docs/moco-v2-reference.md, section 1), bit for bit.
//
// Kernels work in place where the output has the input's size, and take an optional *Scratch
// so that a worker that keeps one Scratch allocates nothing per view in steady state. A nil
// *Scratch is allowed and means "allocate what you need".
package ops

import "pipeline/pipeline"

// Scratch holds the reusable buffers of the kernels. It is not safe for concurrent use: keep
// one per worker goroutine.
type Scratch struct {
	img   []uint8 // resize intermediate, blur ping-pong buffer
	line  []uint8 // one padded row for the horizontal blur
	acc   []int32 // per-column accumulators
	hcoef coeffs  // horizontal resize weights
	vcoef coeffs  // vertical resize weights
	fir   fir     // the filter across rows of the vertical resize and the blur
}

// grow returns (*b)[:n], reallocating when the capacity is short.
func grow[T any](b *[]T, n int) []T {
	if cap(*b) < n {
		*b = make([]T, n)
	}
	return (*b)[:n]
}

// NewImage allocates a w x h image.
func NewImage(w, h int) pipeline.Image {
	return pipeline.Image{Width: w, Height: h, Pix: make([]uint8, w*h*3)}
}
