package augment

import (
	"path/filepath"
	"testing"

	"pipeline/augment/internal/imageio"
	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// benchInput is a 500x375 photo (ImageNet's typical size) from the parity vectors.
func benchInput(b *testing.B) pipeline.Image {
	b.Helper()
	im, err := imageio.Load(filepath.Join(parityDir(b), "case0007.in.png"))
	if err != nil {
		b.Fatal(err)
	}
	return im
}

// BenchmarkMoCoV2TwinViews makes the q and k views of one sample per iteration, each sample
// with fresh parameters, into reused buffers (as the stage does with pooled ones).
func BenchmarkMoCoV2TwinViews(b *testing.B) {
	src := benchInput(b)
	r, err := Build(Spec{Recipe: "mocov2"})
	if err != nil {
		b.Fatal(err)
	}
	bufs := [][]uint8{make([]uint8, 224*224*3), make([]uint8, 224*224*3)}
	w := new(worker)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n := 0
		_, err := r.makeViews(w, 1, pipeline.Meta{Index: int64(i)}, src, false, func(int) ([]uint8, error) {
			n++
			return bufs[n-1], nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "twins/s")
}

// Per-op benchmarks on a 224x224 view resized from a typical crop.
func benchView(b *testing.B) pipeline.Image {
	src := benchInput(b)
	dst := ops.NewImage(224, 224)
	if err := ops.ResizedCrop(dst, src, pipeline.Crop{Top: 40, Left: 90, Height: 300, Width: 280}, nil); err != nil {
		b.Fatal(err)
	}
	return dst
}

func benchOp(b *testing.B, fn func(im pipeline.Image)) {
	view := benchView(b)
	work := ops.NewImage(224, 224)
	b.ReportAllocs()
	b.SetBytes(int64(len(work.Pix)))
	for b.Loop() {
		copy(work.Pix, view.Pix)
		fn(work)
	}
}

func BenchmarkOpResizedCrop(b *testing.B) {
	src := benchInput(b)
	dst := ops.NewImage(224, 224)
	var s ops.Scratch
	b.ReportAllocs()
	for b.Loop() {
		if err := ops.ResizedCrop(dst, src, pipeline.Crop{Top: 40, Left: 90, Height: 300, Width: 280}, &s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpBrightness(b *testing.B) {
	benchOp(b, func(im pipeline.Image) { ops.Brightness(im, 1.3) })
}
func BenchmarkOpContrast(b *testing.B) { benchOp(b, func(im pipeline.Image) { ops.Contrast(im, 0.7) }) }
func BenchmarkOpSaturation(b *testing.B) {
	var s ops.Scratch
	benchOp(b, func(im pipeline.Image) { ops.Saturation(im, 1.3, &s) })
}
func BenchmarkOpHue(b *testing.B)       { benchOp(b, func(im pipeline.Image) { ops.Hue(im, 0.07) }) }
func BenchmarkOpGrayscale(b *testing.B) { benchOp(b, ops.Grayscale) }
func BenchmarkOpFlip(b *testing.B)      { benchOp(b, ops.FlipHorizontal) }
func BenchmarkOpSolarize(b *testing.B)  { benchOp(b, func(im pipeline.Image) { ops.Solarize(im, 128) }) }
func BenchmarkOpBlurSigma1(b *testing.B) {
	var s ops.Scratch
	benchOp(b, func(im pipeline.Image) { ops.GaussianBlur(im, 1.0, &s) })
}
func BenchmarkOpBlurSigma1_8(b *testing.B) {
	var s ops.Scratch
	benchOp(b, func(im pipeline.Image) { ops.GaussianBlur(im, 1.8, &s) })
}
