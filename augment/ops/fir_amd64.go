package ops

import (
	"os"

	"golang.org/x/sys/cpu"
)

// useSIMD turns on the SSE4.1 kernels. PIPELINE_NOSIMD=1 in the environment turns them off
// (the Go loops give the same bytes); tests switch them off to compare.
var useSIMD = cpu.X86.HasSSE41 && os.Getenv("PIPELINE_NOSIMD") == ""

// useAVX2 lets the filter across rows take 16 bytes an iteration.
var useAVX2 = cpu.X86.HasAVX2

func setSIMD(on bool) { useSIMD = on && cpu.X86.HasSSE41 }

//go:noescape
func firRowsSSE41(dst *byte, n int, rows **byte, k *[4]uint32, taps int, bias uint32, shift uint64)

//go:noescape
func firRowsAVX2(dst *byte, n int, rows **byte, k *[4]uint32, taps int, bias uint32, shift uint64)

//go:noescape
func boxRowsAVX2(dst *byte, n int, rows **byte, taps int, kc, ke, bias uint32, shift uint64)

// boxRowsSIMD runs a fir shaped (ke, kc, ..., kc, ke) of 3 or 5 taps over the first
// len(dst)&^15 bytes and returns how many it did (0 without AVX2 or for other shapes).
func boxRowsSIMD(dst []uint8, rows [][]uint8, kc, ke, bias uint32, shift uint) int {
	n := len(dst) &^ 15
	if !useAVX2 || n == 0 || (len(rows) != 3 && len(rows) != 5) {
		return 0
	}
	var ptrs [5]*byte
	for t, r := range rows {
		_ = r[n-1] // every row covers dst
		ptrs[t] = &r[0]
	}
	boxRowsAVX2(&dst[0], n, &ptrs[0], len(rows), kc, ke, bias, uint64(shift))
	return n
}

//go:noescape
func resampleH2AVX2(dst *byte, pairs int, src *byte, pos *int32, w *[8]int32, taps int)

//go:noescape
func firRowsAVX2Unrolled(dst *byte, n int, rows **byte, k *[4]uint32, taps int, bias uint32, shift uint64)

//go:noescape
func resampleHSSE41(dst *byte, n int, src *byte, pos *int32, w *[4]int32, taps int)

// firRowsSIMD runs a fir over len(dst) (a multiple of 8) bytes and returns how many it did.
func firRowsSIMD(dst []uint8, rows [][]uint8, kb *[4]uint32, bias uint32, shift uint) int {
	var ptrs [maxSIMDTaps]*byte
	for t, r := range rows {
		_ = r[len(dst)-1] // every row covers dst
		ptrs[t] = &r[0]
	}
	n, done := len(dst), 0
	if useAVX2 && n >= 16 {
		done = n &^ 15
		if len(rows) >= 2 && len(rows) <= 6 {
			firRowsAVX2Unrolled(&dst[0], done, &ptrs[0], kb, len(rows), bias, uint64(shift))
		} else {
			firRowsAVX2(&dst[0], done, &ptrs[0], kb, len(rows), bias, uint64(shift))
		}
		if done == n {
			return n
		}
		for t := range rows {
			ptrs[t] = &rows[t][done]
		}
	}
	firRowsSSE41(&dst[done], n-done, &ptrs[0], kb, len(rows), bias, uint64(shift))
	return n
}

// resampleHSIMD resamples the first n output pixels of one row (see horizontalN). It reads
// one byte past each window and writes one byte past each pixel, so the caller leaves the
// last pixel of a row, and rows without a byte of slack after the last window, to Go.
func resampleHSIMD(drow, srow []uint8, n int, c *coeffs) {
	if n <= 0 {
		return
	}
	_ = drow[n*3]
	_ = srow[(c.maxPos()+c.taps)*3]
	done := 0
	if useAVX2 && n >= 2 {
		pairs := n / 2
		resampleH2AVX2(&drow[0], pairs, &srow[0], &c.pos[0], &c.wb2[0], c.taps)
		if done = pairs * 2; done == n {
			return
		}
	}
	resampleHSSE41(&drow[done*3], n-done, &srow[0], &c.pos[done], &c.wb[done*c.taps], c.taps)
}

//go:noescape
func blendSSE41(pix *byte, deg *byte, n int, d uint32, f float32)

//go:noescape
func blendAVX2(pix *byte, deg *byte, n int, d uint32, f float32)

// blendSIMD blends the first len(pix)&^3 bytes (see blendBytes) and returns how many it did.
func blendSIMD(pix, deg []uint8, d uint8, f float32) int {
	n := len(pix) &^ 3
	if n == 0 {
		return 0
	}
	if deg != nil {
		deg = deg[:n]
	}
	done := 0
	if useAVX2 && n >= 16 {
		done = n &^ 15
		blendAVX2(&pix[0], degAt(deg, 0), done, uint32(d), f)
		if done == n {
			return n
		}
	}
	blendSSE41(&pix[done], degAt(deg, done), n-done, uint32(d), f)
	return n
}

// degAt is &deg[i], or nil for a constant degenerate image.
func degAt(deg []uint8, i int) *byte {
	if deg == nil {
		return nil
	}
	return &deg[i]
}

//go:noescape
func lumaSumSSE41(src *byte, groups int, sum *[4]uint32)

//go:noescape
func lumaGreySSE41(dst, src *byte, groups int)

// lumaGroups is how many 4-pixel groups of pix the luma kernels may take: they read 4 bytes
// past each group, and a lane sums at most 2^22 values of 255 without overflow.
func lumaGroups(pix []uint8) int { return min(max(len(pix)-4, 0)/12, 1<<22) }

// lumaSumSIMD adds up the L of the first pixels of pix and returns the sum and the number
// of bytes it covered.
func lumaSumSIMD(pix []uint8) (uint64, int) {
	g := lumaGroups(pix)
	if g == 0 {
		return 0, 0
	}
	var lanes [4]uint32
	lumaSumSSE41(&pix[0], g, &lanes)
	return uint64(lanes[0]) + uint64(lanes[1]) + uint64(lanes[2]) + uint64(lanes[3]), g * 12
}

// lumaGreySIMD writes the L of the first pixels of src to all channels of dst and returns
// the number of bytes it covered.
func lumaGreySIMD(dst, src []uint8) int {
	g := lumaGroups(src)
	if g == 0 {
		return 0
	}
	_ = dst[g*12-1]
	lumaGreySSE41(&dst[0], &src[0], g)
	return g * 12
}
