package ops

// maxSIMDTaps bounds the taps the SIMD kernels take (their weights live on the stack);
// longer filters, which only very large downscales need, take the Go loops.
const maxSIMDTaps = 32

// firRows sets dst[i] = min(255, (bias + sum_t rows[t][i]*k[t]) >> shift) for every i, in
// uint32 arithmetic. Callers guarantee that no sum overflows 32 bits: then this is exactly
// Pillow's fixed-point resampling (vertical pass) and box-blur pass.
func firRows(dst []uint8, rows [][]uint8, k []uint32, bias uint32, shift uint) {
	n := len(dst)
	done := 0
	if useSIMD && len(rows) <= maxSIMDTaps && n >= 8 {
		done = firRowsSIMD(dst[:n&^7], rows, k, bias, shift)
	}
	if done == n {
		return
	}
	dst = dst[done:]
	switch len(rows) {
	case 3:
		r0, r1, r2 := rows[0][done:done+len(dst)], rows[1][done:done+len(dst)], rows[2][done:done+len(dst)]
		k0, k1, k2 := k[0], k[1], k[2]
		for i := range dst {
			s := bias + uint32(r0[i])*k0 + uint32(r1[i])*k1 + uint32(r2[i])*k2
			dst[i] = uint8(min(s>>shift, 255))
		}
	default:
		for i := range dst {
			s := bias
			for t, r := range rows {
				s += uint32(r[done+i]) * k[t]
			}
			dst[i] = uint8(min(s>>shift, 255))
		}
	}
}
