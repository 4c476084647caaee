// Package synthetic makes a source of JPEG samples without I/O, to measure the ceiling of the
// rest of the pipeline. A handful of natural-looking images (smooth colour fields, soft blobs
// and sensor-like noise, so that JPEG sizes and decode costs resemble photos rather than flat
// colour) are encoded once; sample i reuses image i mod Variants, and its label is that number.
package synthetic

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"

	"pipeline/pipeline"
)

// Variants is the number of distinct images encoded.
const Variants = 4

// ShardName is Meta.Shard of synthetic samples.
const ShardName = "synthetic"

// Allocator hands out the buffers for encoded bytes; *pipeline.Account is one.
type Allocator interface {
	Alloc(ctx context.Context, it *pipeline.Item, n int) ([]byte, error)
}

// Set holds the encoded images.
type Set struct {
	jpegs [Variants][]byte
}

// New encodes the images at width x height.
func New(width, height int) (*Set, error) {
	if width < 1 || height < 1 || width > 1<<14 || height > 1<<14 {
		return nil, fmt.Errorf("synthetic image size %dx%d is out of range", width, height)
	}
	s := &Set{}
	for v := range s.jpegs {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, Picture(width, height, uint64(v)), &jpeg.Options{Quality: 92}); err != nil {
			return nil, fmt.Errorf("synthetic image %d: %w", v, err)
		}
		s.jpegs[v] = buf.Bytes()
	}
	return s, nil
}

// Sizes returns the encoded size of each variant.
func (s *Set) Sizes() []int {
	out := make([]int, Variants)
	for i, b := range s.jpegs {
		out[i] = len(b)
	}
	return out
}

// Read returns sample i: a copy of image i mod Variants in a buffer from alloc (nil when skip,
// for exact resume). Its index is i and its key i in eight digits.
func (s *Set) Read(ctx context.Context, i int64, alloc Allocator, skip bool) (*pipeline.Item, error) {
	v := i % Variants
	it := &pipeline.Item{Meta: pipeline.Meta{Key: fmt.Sprintf("%08d", i), Shard: ShardName, Index: i, Label: int32(v)}}
	if skip {
		return it, nil
	}
	buf, err := alloc.Alloc(ctx, it, len(s.jpegs[v]))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", it.Meta, err)
	}
	copy(buf, s.jpegs[v])
	it.Encoded = buf
	return it, nil
}

// Picture draws a deterministic natural-looking image: a sum of a few low-frequency waves per
// channel (smooth gradients and soft shapes) plus luma Gaussian noise (sigma 12 levels, like
// the grain of the imagenet-like benchmark set).
func Picture(width, height int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	type wave struct{ fx, fy, phase, amp float64 }
	var waves [3][4]wave
	var base [3]float64
	for c := range waves {
		base[c] = 60 + 120*rng.Float64()
		for k := range waves[c] {
			waves[c][k] = wave{
				fx:    (rng.Float64()*2 - 1) * 6 * math.Pi / float64(width),
				fy:    (rng.Float64()*2 - 1) * 6 * math.Pi / float64(height),
				phase: rng.Float64() * 2 * math.Pi,
				amp:   15 + 25*rng.Float64(),
			}
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := 0; y < height; y++ {
		for x := 0; x < width; x++ {
			noise := rng.NormFloat64() * 12
			var px [3]uint8
			for c := range px {
				v := base[c] + noise
				for _, w := range waves[c] {
					v += w.amp * math.Sin(w.fx*float64(x)+w.fy*float64(y)+w.phase)
				}
				px[c] = uint8(max(0, min(255, math.Round(v))))
			}
			img.SetRGBA(x, y, color.RGBA{px[0], px[1], px[2], 255})
		}
	}
	return img
}
