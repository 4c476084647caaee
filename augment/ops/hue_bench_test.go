//go:build linux

package ops

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// threadCPU is the CPU time of the calling OS thread: on the shared, loaded test machine it
// moves far less than wall time.
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCPU runs fn per iteration on a locked thread and reports its CPU time per op too.
func benchCPU(b *testing.B, bytes int, fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.SetBytes(int64(bytes))
	start := threadCPU(b)
	for b.Loop() {
		fn()
	}
	b.ReportMetric(float64(threadCPU(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkHueKernel compares the SIMD and Go hue paths on a 224x224 view of random colours
// (the Go path's worst case for branch prediction) and of a smooth gradient.
func BenchmarkHueKernel(b *testing.B) {
	for _, img := range []struct {
		name string
		im   func() []uint8
	}{
		{"noise", func() []uint8 { return noise(224, 224, 1).Pix }},
		{"gradient", func() []uint8 {
			im := NewImage(224, 224)
			for i := 0; i < len(im.Pix); i += 3 {
				p := i / 3
				im.Pix[i], im.Pix[i+1], im.Pix[i+2] = uint8(p%224), uint8(p/224), uint8(90+p%37)
			}
			return im.Pix
		}},
	} {
		src := img.im()
		work := NewImage(224, 224)
		for _, simd := range []bool{true, false} {
			name := img.name + "/go"
			if simd {
				name = img.name + "/simd"
			}
			b.Run(name, func(b *testing.B) {
				old := useSIMD
				setSIMD(simd)
				defer setSIMD(old)
				benchCPU(b, len(src), func() {
					copy(work.Pix, src)
					Hue(work, 0.07)
				})
			})
		}
	}
}
