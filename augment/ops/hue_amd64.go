package ops

// hueGroups is how many 8-pixel groups of pix the AVX2 hue kernels may take: they read 4
// bytes past each group.
func hueGroups(pix []uint8) int { return max(len(pix)-4, 0) / 24 }

//go:noescape
func hueAVX2(pix *byte, groups int, shift uint32)

//go:noescape
func rgbToHSVAVX2(pix *byte, groups int)

//go:noescape
func hsvToRGBAVX2(pix *byte, groups int, shift uint32)

// hueSIMD applies the hue shift to the first pixels of pix and returns the number of bytes
// it covered (0 without AVX2).
func hueSIMD(pix []uint8, shift uint8) int {
	g := hueGroups(pix)
	if !useSIMD || !useAVX2 || g == 0 {
		return 0
	}
	hueAVX2(&pix[0], g, uint32(shift))
	return g * 24
}
