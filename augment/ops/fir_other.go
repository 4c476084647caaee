//go:build !amd64

package ops

var useSIMD, useAVX2 = false, false

func setSIMD(bool) {}

func firRowsSIMD(dst []uint8, rows [][]uint8, kb *[4]uint32, bias uint32, shift uint) int {
	return 0
}

func boxRowsSIMD(dst []uint8, rows [][]uint8, kc, ke, bias uint32, shift uint) int { return 0 }

func resampleHSIMD(drow, srow []uint8, n int, c *coeffs) {}

func blendSIMD(pix, deg []uint8, d uint8, f float32) int { return 0 }

func lumaSumSIMD(pix []uint8) (uint64, int) { return 0, 0 }

func lumaGreySIMD(dst, src []uint8) int { return 0 }

func hueSIMD(pix []uint8, shift uint8) int { return 0 }
