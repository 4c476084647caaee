package ops

import (
	"math"
	"sync"

	"pipeline/pipeline"
)

// RGBToHSV is Pillow's rgb2hsv for one pixel: 8-bit H, S, V with float32 intermediates.
func RGBToHSV(r, g, b uint8) (h, s, v uint8) {
	mx := max(r, g, b)
	mn := min(r, g, b)
	if mx == mn {
		return 0, 0, mx
	}
	cr := float32(mx - mn)
	sf := cr / float32(mx)
	rc := float32(mx-r) / cr
	gc := float32(mx-g) / cr
	bc := float32(mx-b) / cr
	var hf float32
	switch {
	case r == mx:
		hf = bc - gc
	case g == mx:
		hf = float32(2.0 + float64(rc) - float64(bc))
	default:
		hf = float32(4.0 + float64(gc) - float64(rc))
	}
	// fmod(hf/6 + 1, 1): the argument lies in [5/6, 2), so one subtraction is exact.
	y := float64(hf)/6.0 + 1.0
	if y >= 1 {
		y -= 1
	}
	hh := float32(y)
	return clipInt(int(float64(hh) * 255.0)), clipInt(int(float64(sf) * 255.0)), mx
}

// HSVToRGB is Pillow's hsv2rgb for one pixel.
func HSVToRGB(h, s, v uint8) (r, g, b uint8) {
	if s == 0 {
		return v, v, v
	}
	hd := float64(float32(h)) * 6.0 / 255.0
	i := int(math.Floor(hd))
	f := float32(hd - float64(float32(i)))
	fs := float32(float64(s) / 255.0)
	vd := float64(v)
	p := clipInt(int(math.Round(vd * (1.0 - float64(fs)))))
	q := clipInt(int(math.Round(vd * (1.0 - float64(fs*f)))))
	t := clipInt(int(math.Round(vd * (1.0 - float64(fs)*(1.0-float64(f))))))
	return sector(i%6, v, p, q, t)
}

func sector(i int, v, p, q, t uint8) (r, g, b uint8) {
	switch i {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	default:
		return v, p, q
	}
}

func clipInt(x int) uint8 {
	if x <= 0 {
		return 0
	}
	if x >= 255 {
		return 255
	}
	return uint8(x)
}

// HueShift is the 8-bit shift torchvision's PIL adjust_hue adds to H: trunc(h*255), wrapped
// modulo 256.
func HueShift(h float64) uint8 { return uint8(int(h*255) & 255) }

// hueTables are the per-pixel parts of RGBToHSV and HSVToRGB that depend on at most two bytes,
// so that the hue kernel does no division and only two float products per pixel.
type hueTables struct {
	// hue[branch<<16 | d1<<8 | d2]: H for the channel that is the maximum (branch 0, 1, 2 for
	// R, G, B) and the distances d1, d2 of the two other channels (in RGB order) below it.
	hue [3 << 16]uint8
	sat [1 << 16]uint8 // sat[max<<8 | (max-min)]
	p   [1 << 16]uint8 // p[s<<8 | v]
	// per H: the sector and f of hsv2rgb; per S: fs.
	f      [256]float32
	omf    [256]float64 // 1 - f
	shifts [256][3]uint8
	fs     [256]float32
	fs64   [256]float64
}

// sectorShifts gives, per hsv2rgb sector, the bit offsets of R, G and B in a word packing
// v, p, q, t in bytes 0 to 3.
var sectorShifts = [6][3]uint8{
	{0, 24, 8}, // (v, t, p)
	{16, 0, 8}, // (q, v, p)
	{8, 0, 24}, // (p, v, t)
	{8, 16, 0}, // (p, q, v)
	{24, 8, 0}, // (t, p, v)
	{0, 8, 16}, // (v, p, q)
}

var (
	hueOnce sync.Once
	hueTab  *hueTables
)

func tables() *hueTables {
	hueOnce.Do(func() {
		t := new(hueTables)
		// H depends only on the distances of the channels below the maximum, so the
		// maximum is taken as 255.
		for d1 := range 256 {
			for d2 := range 256 {
				if d1 == 0 && d2 == 0 {
					continue
				}
				a, b := uint8(255-d1), uint8(255-d2)
				t.hue[0<<16|d1<<8|d2], _, _ = RGBToHSV(255, a, b)
				// For G or B as the maximum, the channels before it stay strictly below.
				if d1 > 0 {
					t.hue[1<<16|d1<<8|d2], _, _ = RGBToHSV(a, 255, b)
				}
				if d1 > 0 && d2 > 0 {
					t.hue[2<<16|d1<<8|d2], _, _ = RGBToHSV(a, b, 255)
				}
			}
		}
		for mx := 1; mx < 256; mx++ {
			for cr := 1; cr <= mx; cr++ {
				_, s, _ := RGBToHSV(uint8(mx), uint8(mx-cr), uint8(mx-cr))
				t.sat[mx<<8|cr] = s
			}
		}
		for h := range 256 {
			hd := float64(float32(h)) * 6.0 / 255.0
			i := int(math.Floor(hd))
			t.f[h] = float32(hd - float64(float32(i)))
			t.omf[h] = 1.0 - float64(t.f[h])
			t.shifts[h] = sectorShifts[i%6]
		}
		for s := range 256 {
			fs := float32(float64(s) / 255.0)
			t.fs[s] = fs
			t.fs64[s] = float64(fs)
			for v := range 256 {
				t.p[s<<8|v] = clipInt(int(math.Round(float64(v) * (1.0 - float64(fs)))))
			}
		}
		hueTab = t
	})
	return hueTab
}

// Hue is torchvision's adjust_hue on a PIL image: RGB to 8-bit HSV, H += trunc(h*255)
// (mod 256), back to RGB, with Pillow's rounding.
func Hue(im pipeline.Image, h float64) {
	shift := HueShift(h)
	pix := im.Pix[:im.Width*im.Height*3]
	done := hueSIMD(pix, shift)
	hueGo(pix[done:], shift)
}

// hueGo is Hue on whole pixels, with the tables.
func hueGo(pix []uint8, shift uint8) {
	t := tables()
	for i := 0; i+2 < len(pix); i += 3 {
		px := pix[i : i+3 : i+3]
		r, g, b := px[0], px[1], px[2]
		mx := max(r, g, b)
		mn := min(r, g, b)
		if mx == mn {
			continue // grey: S = 0, and hsv2rgb gives V back whatever H is
		}
		// The channel that is the maximum (R before G before B on ties) picks the hue
		// table, and the other two channels' distances below it index into it. (Branch-free
		// arithmetic for this measured slower than these branches.)
		br, c1, c2 := 2, r, g
		if g == mx {
			br, c2 = 1, b
		}
		if r == mx {
			br, c1, c2 = 0, g, b
		}
		hh := t.hue[br<<16|int(mx-c1)<<8|int(mx-c2)] + shift
		s := t.sat[int(mx)<<8|int(mx-mn)]
		if s == 0 {
			px[0], px[1], px[2] = mx, mx, mx
			continue
		}
		vd := float64(mx)
		// v*(1 - fs*f) is exact in float64 (8 bits times at most 38), so +0.5 and truncation
		// round half away from zero exactly; t's products may round, so it gets the guard
		// for values just below 0.5. Both factors lie in [0, 1]: no clamping is needed.
		q := uint32(vd*(1.0-float64(t.fs[s]*t.f[hh])) + 0.5)
		tx := vd * (1.0 - t.fs64[s]*t.omf[hh])
		tv := uint32(tx + 0.5)
		if tx < 0.5 {
			tv = 0
		}
		// v, p, q, t packed in one word; the sector's shifts pick R, G and B out of it.
		vals := uint32(mx) | uint32(t.p[int(s)<<8|int(mx)])<<8 | q<<16 | tv<<24
		sh := &t.shifts[hh]
		px[0], px[1], px[2] = uint8(vals>>sh[0]), uint8(vals>>sh[1]), uint8(vals>>sh[2])
	}
}
