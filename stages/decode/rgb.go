package decode

import (
	"image"
	"image/color"

	"pipeline/pipeline"
)

// toRGB copies a decoded image.Image into a packed RGB buffer from alloc. It is the slow path
// (PNG, and JPEG without cgo): the common layouts have their own loops, anything else goes
// through color.NRGBAModel. Alpha is dropped without compositing, as Pillow's convert("RGB")
// does.
func toRGB(m image.Image, alloc Alloc) (pipeline.Image, error) {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	pix, err := alloc(w * h * 3)
	if err != nil {
		return pipeline.Image{}, err
	}
	out := pipeline.Image{Width: w, Height: h, Pix: pix[:w*h*3]}
	switch m := m.(type) {
	case *image.YCbCr:
		ycbcrToRGB(m, out.Pix)
	case *image.Gray:
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+w]
			dst := out.Pix[y*w*3 : (y+1)*w*3]
			for x, v := range src {
				dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
			}
		}
	case *image.CMYK:
		for y := 0; y < h; y++ {
			src := m.Pix[y*m.Stride : y*m.Stride+4*w]
			dst := out.Pix[y*w*3 : (y+1)*w*3]
			for x := 0; x < w; x++ {
				// image/jpeg has already undone Adobe's inversion.
				c, mg, ye, k := src[4*x], src[4*x+1], src[4*x+2], src[4*x+3]
				dst[3*x], dst[3*x+1], dst[3*x+2] = cmykToRGB(c, mg, ye, k)
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			copyDropAlpha(out.Pix[y*w*3:(y+1)*w*3], m.Pix[y*m.Stride:y*m.Stride+4*w])
		}
	case *image.RGBA:
		// image/png only makes RGBA for opaque pixels, where premultiplied equals straight.
		if m.Opaque() {
			for y := 0; y < h; y++ {
				copyDropAlpha(out.Pix[y*w*3:(y+1)*w*3], m.Pix[y*m.Stride:y*m.Stride+4*w])
			}
		} else {
			anyToRGB(m, out.Pix)
		}
	case *image.Paletted:
		palettedToRGB(m, out.Pix)
	default:
		// 16-bit PNGs keep their high byte, as Pillow does for RGB;16B. (Pillow clips 16-bit
		// grayscale to 255 instead; we keep the high byte there too, see README.)
		anyToRGB(m, out.Pix)
	}
	return out, nil
}

func copyDropAlpha(dst, src []byte) {
	for x := 0; x < len(dst)/3; x++ {
		dst[3*x], dst[3*x+1], dst[3*x+2] = src[4*x], src[4*x+1], src[4*x+2]
	}
}

func anyToRGB(m image.Image, dst []byte) {
	b := m.Bounds()
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBA64Model.Convert(m.At(x, y)).(color.NRGBA64)
			dst[i], dst[i+1], dst[i+2] = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8)
			i += 3
		}
	}
}

func palettedToRGB(m *image.Paletted, dst []byte) {
	// Indexes past the palette stay black (image/png rejects them anyway).
	var lut [256][3]uint8
	for i, c := range m.Palette {
		if i == len(lut) {
			break
		}
		n := color.NRGBAModel.Convert(c).(color.NRGBA)
		lut[i] = [3]uint8{n.R, n.G, n.B}
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	for y := 0; y < h; y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+w]
		out := dst[y*w*3 : (y+1)*w*3]
		for x, idx := range row {
			c := lut[idx]
			out[3*x], out[3*x+1], out[3*x+2] = c[0], c[1], c[2]
		}
	}
}

// ycbcrToRGB converts image/jpeg's planar output the way libjpeg (and so Pillow) does:
// "fancy" triangular chroma upsampling for 2x1, 1x2 and 2x2 subsampling, replication for the
// rare 4x subsamplings, and libjpeg's fixed-point colour tables. What is left between the two
// decoders is their IDCTs, a few LSB.
func ycbcrToRGB(m *image.YCbCr, dst []byte) {
	var hs, vs uint // log2 of the chroma subsampling
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 1
	case image.YCbCrSubsampleRatio420:
		hs, vs = 1, 1
	case image.YCbCrSubsampleRatio440:
		vs = 1
	case image.YCbCrSubsampleRatio411:
		hs = 2
	case image.YCbCrSubsampleRatio410:
		hs, vs = 2, 1
	}
	// Fancy only for 2x1, 1x2 and 2x2: 4:1:0 (4x2) is replicated both ways, as libjpeg does.
	fancyH, fancyV := hs == 1, vs == 1 && hs <= 1
	w, h := m.Rect.Dx(), m.Rect.Dy()
	// The chroma planes of image/jpeg run on to the MCU edge; libjpeg stops at the true
	// component size and repeats its last sample, and so must we.
	cw, ch := (w+1<<hs-1)>>hs, (h+1<<vs-1)>>vs
	cbRow, crRow := make([]int32, cw), make([]int32, cw) // after the vertical step
	cbUp, crUp := make([]uint8, w), make([]uint8, w)     // after the horizontal step
	chromaRow := func(plane []byte, cy int) []byte {
		off := m.COffset(m.Rect.Min.X, m.Rect.Min.Y) + cy*m.CStride
		return plane[off : off+cw]
	}
	i := 0
	for y := 0; y < h; y++ {
		cy := y >> vs
		cb, cr := chromaRow(m.Cb, cy), chromaRow(m.Cr, cy)
		if fancyV {
			// libjpeg's column sums: 3 * nearer row + further row (above for even y).
			other := min(max(cy-1+2*(y&1), 0), ch-1)
			cb2, cr2 := chromaRow(m.Cb, other), chromaRow(m.Cr, other)
			for c := range cbRow {
				cbRow[c] = 3*int32(cb[c]) + int32(cb2[c])
				crRow[c] = 3*int32(cr[c]) + int32(cr2[c])
			}
		} else {
			for c := range cbRow {
				cbRow[c], crRow[c] = int32(cb[c]), int32(cr[c])
			}
		}
		switch {
		case fancyH:
			// 3/4 nearer sample + 1/4 further one, with libjpeg's rounding for each parity.
			shift, biasEven, biasOdd := uint(2), int32(1), int32(2) // h2v1
			if fancyV {
				shift, biasEven, biasOdd = 4, 8, 7 // h2v2
			}
			upsample2(cbUp, cbRow, shift, biasEven, biasOdd)
			upsample2(crUp, crRow, shift, biasEven, biasOdd)
		case fancyV: // h1v2
			bias := 1 + int32(y&1)
			for x := range cbUp {
				cbUp[x], crUp[x] = uint8((cbRow[x]+bias)>>2), uint8((crRow[x]+bias)>>2)
			}
		default: // no subsampling, or 4x horizontally, which libjpeg replicates too
			for x := range cbUp {
				cbUp[x], crUp[x] = uint8(cbRow[x>>hs]), uint8(crRow[x>>hs])
			}
		}
		yRow := m.Y[m.YOffset(m.Rect.Min.X, m.Rect.Min.Y+y):][:w]
		out := dst[i : i+3*w]
		for x, yy := range yRow {
			out[3*x], out[3*x+1], out[3*x+2] = yccToRGB(int32(yy), cbUp[x], crUp[x])
		}
		i += 3 * w
	}
}

// upsample2 doubles a row of chroma sums the way libjpeg's h2v1/h2v2 fancy upsamplers do:
// each output is 3 * its own sample + its outer neighbour (the edge sample repeats), rounded.
func upsample2(out []uint8, row []int32, shift uint, biasEven, biasOdd int32) {
	last := len(row) - 1
	for c, v := range row {
		t := 3 * v
		left, right := row[max(c-1, 0)], row[min(c+1, last)]
		out[2*c] = uint8((t + left + biasEven) >> shift)
		if 2*c+1 < len(out) {
			out[2*c+1] = uint8((t + right + biasOdd) >> shift)
		}
	}
}

// libjpeg's YCbCr to RGB tables (jdcolor.c build_ycc_rgb_table), 16-bit fixed point.
var crR, cbB, crG, cbG [256]int32

func init() {
	const half = 1 << 15
	fix := func(x float64) int32 { return int32(x*(1<<16) + 0.5) }
	for i := range 256 {
		x := int32(i - 128)
		crR[i] = (fix(1.40200)*x + half) >> 16
		cbB[i] = (fix(1.77200)*x + half) >> 16
		crG[i] = -fix(0.71414) * x
		cbG[i] = -fix(0.34414)*x + half
	}
}

func yccToRGB(y int32, cb, cr uint8) (r, g, b uint8) {
	return clamp8(y + crR[cr]), clamp8(y + (cbG[cb]+crG[cr])>>16), clamp8(y + cbB[cb])
}

func clamp8(v int32) uint8 { return uint8(min(max(v, 0), 255)) }

// cmykToRGB is Pillow's cmyk2rgb (libImaging/Convert.c) on straight (ink = 255) CMYK:
// each channel is (255-k) - (255-k)*c/255, rounded the way Pillow's MULDIV255 rounds.
func cmykToRGB(c, m, y, k uint8) (r, g, b uint8) {
	nk := 255 - int(k)
	return uint8(nk - mulDiv255(int(c), nk)), uint8(nk - mulDiv255(int(m), nk)), uint8(nk - mulDiv255(int(y), nk))
}

// mulDiv255 is a*b/255 rounded, exactly as Pillow's MULDIV255 macro.
func mulDiv255(a, b int) int {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}

// invertedCMYKToRGB converts in place a packed buffer of Adobe-inverted CMYK pixels (what
// libjpeg returns for CMYK and YCCK JPEGs; 255 = no ink) to packed RGB, which takes the
// first 3/4 of buf. Pillow reads every CMYK JPEG as inverted ("CMYK;I"), and so do we.
func invertedCMYKToRGB(buf []byte) []byte {
	n := len(buf) / 4
	for i := 0; i < n; i++ {
		// Writing pixel i at 3i never overtakes reading pixel i+1 at 4(i+1).
		c, m, y, k := buf[4*i], buf[4*i+1], buf[4*i+2], buf[4*i+3]
		buf[3*i], buf[3*i+1], buf[3*i+2] = cmykToRGB(255-c, 255-m, 255-y, 255-k)
	}
	return buf[:3*n]
}
