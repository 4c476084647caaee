package ops

// maxSIMDTaps bounds the taps the SIMD kernels take (their weights live on the stack);
// longer filters, which only very large downscales need, take the Go loops.
const maxSIMDTaps = 32

// fir is a filter across rows: out[i] = min(255, (bias + sum_t rows[t][i]*k[t]) >> shift),
// in uint32 arithmetic. Callers guarantee that no sum overflows 32 bits: then this is
// exactly Pillow's fixed-point resampling (vertical pass) and box-blur pass. The weights are
// set once (and repeated on SIMD lanes), the rows before each run.
type fir struct {
	taps  int
	bias  uint32
	shift uint
	rows  [maxSIMDTaps][]uint8
	k     [maxSIMDTaps]uint32
	kb    [maxSIMDTaps][4]uint32
	// box: the weights are (k[0], k[1], ..., k[1], k[0]), as in a box-blur pass, so a sum
	// needs two products.
	box bool
}

func (f *fir) setWeights(k []uint32) {
	f.taps = len(k)
	for t, v := range k {
		f.k[t] = v
		f.kb[t] = [4]uint32{v, v, v, v}
	}
	f.box = len(k) >= 3 && k[0] == k[len(k)-1]
	for t := 1; f.box && t < len(k)-1; t++ {
		f.box = k[t] == k[1]
	}
}

// run filters f.rows[:f.taps] into dst; every row must be at least len(dst) long.
func (f *fir) run(dst []uint8) {
	n := len(dst)
	done := 0
	rows := f.rows[:f.taps]
	if useSIMD && f.box {
		done = boxRowsSIMD(dst, rows, f.k[1], f.k[0], f.bias, f.shift)
	}
	if useSIMD && done == 0 && n >= 8 {
		done = firRowsSIMD(dst[:n&^7], rows, &f.kb[0], f.bias, f.shift)
	}
	if done == n {
		return
	}
	dst = dst[done:]
	bias, shift := f.bias, f.shift
	switch len(rows) {
	case 3:
		r0, r1, r2 := rows[0][done:done+len(dst)], rows[1][done:done+len(dst)], rows[2][done:done+len(dst)]
		k0, k1, k2 := f.k[0], f.k[1], f.k[2]
		for i := range dst {
			s := bias + uint32(r0[i])*k0 + uint32(r1[i])*k1 + uint32(r2[i])*k2
			dst[i] = uint8(min(s>>shift, 255))
		}
	default:
		for i := range dst {
			s := bias
			for t, r := range rows {
				s += uint32(r[done+i]) * f.k[t]
			}
			dst[i] = uint8(min(s>>shift, 255))
		}
	}
}
