package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"pipeline/pipeline"
)

// backends lists the JPEG decoders of this build: libjpeg-turbo and image/jpeg with cgo,
// image/jpeg alone without.
func backends() []*jpegBackend {
	if defaultJPEG.name == stdJPEG.name {
		return []*jpegBackend{&stdJPEG}
	}
	return []*jpegBackend{&defaultJPEG, &stdJPEG}
}

func isTurbo(b *jpegBackend) bool { return b.name != stdJPEG.name }

// forEachBackend runs f once per JPEG backend, with a Decoder forced onto it.
func forEachBackend(t *testing.T, f func(t *testing.T, d *Decoder)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, &Decoder{jpeg: b}) })
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantRGB reads an 8-bit RGB reference PNG through image.Image.At, independently of toRGB.
func wantRGB(t testing.TB, name string) pipeline.Image {
	t.Helper()
	m, err := png.Decode(bytes.NewReader(readFile(t, name)))
	if err != nil {
		t.Fatal(err)
	}
	return rgbOf(m)
}

// rgbOf flattens any image with At, the slow and obviously right way.
func rgbOf(m image.Image) pipeline.Image {
	b := m.Bounds()
	out := pipeline.Image{Width: b.Dx(), Height: b.Dy()}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
			out.Pix = append(out.Pix, c.R, c.G, c.B)
		}
	}
	return out
}

// diff compares two images of the same size: the largest and the mean absolute difference.
func diff(t testing.TB, got, want pipeline.Image) (maxDiff int, meanDiff float64) {
	t.Helper()
	if got.Width != want.Width || got.Height != want.Height {
		t.Fatalf("size %dx%d, want %dx%d", got.Width, got.Height, want.Width, want.Height)
	}
	if len(got.Pix) != got.Width*got.Height*3 {
		t.Fatalf("len(Pix) = %d, want %d", len(got.Pix), got.Width*got.Height*3)
	}
	var sum int
	for i := range got.Pix {
		d := int(got.Pix[i]) - int(want.Pix[i])
		d = max(d, -d)
		maxDiff = max(maxDiff, d)
		sum += d
	}
	return maxDiff, float64(sum) / float64(len(got.Pix))
}

// reasonOf returns the skip reason of a decode error, failing the test on any other error.
func reasonOf(t testing.TB, err error) string {
	t.Helper()
	var de *Error
	if !errors.As(err, &de) {
		t.Fatalf("want a *decode.Error, got %T %v", err, err)
	}
	return de.Reason
}

// testPhoto is a deterministic image with gradients, edges and texture.
func testPhoto(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	seed := uint32(1)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			seed = seed*1664525 + 1013904223
			noise := int(seed>>28) - 8
			r := 255 * x / w
			g := 255 * y / h
			b := 128
			if (x/16+y/16)%2 == 0 {
				b = 220
			}
			m.SetNRGBA(x, y, color.NRGBA{clamp(r + noise), clamp(g - noise), clamp(b + noise), 255})
		}
	}
	return m
}

func clamp(v int) uint8 { return uint8(min(max(v, 0), 255)) }

func encodeJPEG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPillowParity decodes JPEGs made by Pillow and compares with Pillow's own
// convert("RGB") of them (testdata/make_fixtures.py). libjpeg-turbo is the library Pillow uses,
// with the same settings, so it must match exactly. image/jpeg has its own IDCT (a few LSB);
// for YCCK it also upsamples chroma by replication inside image/jpeg, where libjpeg
// interpolates, which costs much more on the fixture's saturated chroma edges.
//
// 4:1:0 is the exception: TurboJPEG 2.1 cannot read its header, so the libjpeg-turbo backend
// hands it to image/jpeg and is held to image/jpeg's bounds.
func TestPillowParity(t *testing.T) {
	for _, tc := range []struct {
		name            string
		stdMax, stdMean float64
		turboFallback   bool
	}{
		{"photo", 4, 0.1, false},
		{"photo422", 4, 0.1, false},
		{"photo440", 4, 0.1, false},
		{"photo411", 4, 0.1, false},
		{"photo410", 4, 0.1, true},
		{"cmyk", 3, 0.1, false},
		{"ycck", 64, 7, false},
	} {
		data, want := readFile(t, tc.name+".jpg"), wantRGB(t, tc.name+".want.png")
		for _, b := range backends() {
			t.Run(tc.name+"/"+b.name, func(t *testing.T) {
				d := &Decoder{jpeg: b}
				got, err := d.Decode(data, nil)
				if err != nil {
					t.Fatal(err)
				}
				maxD, meanD := diff(t, got, want)
				t.Logf("vs Pillow: max diff %d, mean %.3f", maxD, meanD)
				if isTurbo(b) && !tc.turboFallback && maxD != 0 {
					t.Fatalf("libjpeg-turbo differs from Pillow: max %d, mean %.3f", maxD, meanD)
				}
				if float64(maxD) > tc.stdMax || meanD > tc.stdMean {
					t.Fatalf("too far from Pillow: max diff %d, mean %.3f", maxD, meanD)
				}
			})
		}
	}
}

// TestBackendsAgree decodes one JPEG written by image/jpeg (4:2:0) with both backends.
func TestBackendsAgree(t *testing.T) {
	bs := backends()
	if len(bs) < 2 {
		t.Skip("built without cgo: only image/jpeg")
	}
	data := encodeJPEG(t, testPhoto(200, 150))
	turbo, err := (&Decoder{jpeg: bs[0]}).Decode(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	std, err := (&Decoder{jpeg: bs[1]}).Decode(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	maxD, meanD := diff(t, turbo, std)
	t.Logf("libjpeg-turbo vs image/jpeg: max diff %d, mean %.3f", maxD, meanD)
	if maxD > 4 || meanD > 0.1 {
		t.Fatalf("backends disagree: max diff %d, mean %.3f", maxD, meanD)
	}
}

// TestYCbCr410 converts image/jpeg's 4:1:0 output (luma 4x2 per chroma sample, which
// image/jpeg decodes): libjpeg replicates such chroma, so every pixel takes the chroma sample
// of its 4x2 block. The fancy vertical step of 4:2:0 and 4:4:0 must not apply to it.
func TestYCbCr410(t *testing.T) {
	const w, h = 37, 29 // not multiples of the 4x2 block
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio410)
	seed := uint32(7)
	for _, plane := range [][]byte{m.Y, m.Cb, m.Cr} {
		for i := range plane {
			seed = seed*1664525 + 1013904223
			plane[i] = byte(seed >> 24)
		}
	}
	got, err := toRGB(m, heapAlloc)
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, b := yccToRGB(int32(m.Y[m.YOffset(x, y)]), m.Cb[m.COffset(x, y)], m.Cr[m.COffset(x, y)])
			i := 3 * (y*w + x)
			if want := [3]byte{r, g, b}; [3]byte(got.Pix[i:i+3]) != want {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, got.Pix[i:i+3], want)
			}
		}
	}
}

func TestGrayJPEG(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 40, 30))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	data := encodeJPEG(t, src) // image/jpeg writes a one-component JPEG for *image.Gray
	ref, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	refGray := ref.(*image.Gray)
	forEachBackend(t, func(t *testing.T, d *Decoder) {
		got, err := d.Decode(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Width != 40 || got.Height != 30 {
			t.Fatalf("size %dx%d", got.Width, got.Height)
		}
		for i := 0; i < 40*30; i++ {
			r, g, b := got.Pix[3*i], got.Pix[3*i+1], got.Pix[3*i+2]
			if r != g || g != b {
				t.Fatalf("pixel %d = (%d,%d,%d), want gray", i, r, g, b)
			}
			if dv := int(r) - int(refGray.Pix[i]); dv > 2 || dv < -2 {
				t.Fatalf("pixel %d = %d, image/jpeg says %d", i, r, refGray.Pix[i])
			}
		}
	})
}

// TestCMYKFormula pins cmykToRGB to values printed by Pillow 9.4:
// Image.new("CMYK", ...).putdata(...).convert("RGB").
func TestCMYKFormula(t *testing.T) {
	for _, tc := range []struct{ c, m, y, k, r, g, b uint8 }{
		{0, 0, 0, 0, 255, 255, 255},
		{100, 50, 200, 30, 137, 181, 49},
		{255, 0, 0, 128, 0, 127, 127},
		{10, 20, 30, 255, 0, 0, 0},
	} {
		r, g, b := cmykToRGB(tc.c, tc.m, tc.y, tc.k)
		if r != tc.r || g != tc.g || b != tc.b {
			t.Errorf("cmykToRGB(%d,%d,%d,%d) = (%d,%d,%d), Pillow says (%d,%d,%d)",
				tc.c, tc.m, tc.y, tc.k, r, g, b, tc.r, tc.g, tc.b)
		}
	}
	// The in-place conversion of inverted CMYK agrees with the per-pixel formula.
	buf := make([]byte, 4*300)
	for i := range buf {
		buf[i] = uint8(i*37 + i/7)
	}
	orig := append([]byte(nil), buf...)
	rgb := invertedCMYKToRGB(buf)
	if len(rgb) != 3*300 {
		t.Fatalf("len %d", len(rgb))
	}
	for i := 0; i < 300; i++ {
		p := orig[4*i:]
		r, g, b := cmykToRGB(255-p[0], 255-p[1], 255-p[2], 255-p[3])
		if rgb[3*i] != r || rgb[3*i+1] != g || rgb[3*i+2] != b {
			t.Fatalf("pixel %d: in place (%d,%d,%d), formula (%d,%d,%d)", i, rgb[3*i], rgb[3*i+1], rgb[3*i+2], r, g, b)
		}
	}
}

func TestPNG(t *testing.T) {
	const w, h = 7, 5
	rect := image.Rect(0, 0, w, h)
	at := func(x, y int) (uint8, uint8, uint8) { return uint8(30 * x), uint8(40 * y), uint8(x*y + 3) }

	rgb := image.NewNRGBA(rect) // opaque: image/png writes 8-bit truecolour
	rgba := image.NewNRGBA(rect)
	gray := image.NewGray(rect)
	gray16 := image.NewGray16(rect)
	rgb16 := image.NewNRGBA64(rect)
	pal := image.NewPaletted(rect, color.Palette{
		color.NRGBA{10, 20, 30, 255}, color.NRGBA{200, 100, 50, 0}, color.NRGBA{1, 2, 3, 128},
	})
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, b := at(x, y)
			rgb.SetNRGBA(x, y, color.NRGBA{r, g, b, 255})
			rgba.SetNRGBA(x, y, color.NRGBA{r, g, b, uint8(x * 40)}) // alpha 0 at x=0
			gray.SetGray(x, y, color.Gray{r})
			gray16.SetGray16(x, y, color.Gray16{uint16(r)<<8 | 0x7f})
			rgb16.SetNRGBA64(x, y, color.NRGBA64{uint16(r)<<8 | 1, uint16(g)<<8 | 0xff, uint16(b) << 8, 0x8000})
			pal.SetColorIndex(x, y, uint8((x+y)%3))
		}
	}
	palRGB := [3][3]uint8{{10, 20, 30}, {200, 100, 50}, {1, 2, 3}}
	for _, tc := range []struct {
		name string
		img  image.Image
		want func(x, y int) (uint8, uint8, uint8)
	}{
		{"rgb", rgb, at},
		// Alpha is dropped, not composited: a fully transparent pixel keeps its colour.
		{"rgba", rgba, at},
		{"gray", gray, func(x, y int) (uint8, uint8, uint8) { r, _, _ := at(x, y); return r, r, r }},
		{"gray16", gray16, func(x, y int) (uint8, uint8, uint8) { r, _, _ := at(x, y); return r, r, r }},
		{"rgba16", rgb16, at},
		{"paletted", pal, func(x, y int) (uint8, uint8, uint8) {
			c := palRGB[(x+y)%3]
			return c[0], c[1], c[2]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeBytes(encodePNG(t, tc.img), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.Width != w || got.Height != h || len(got.Pix) != w*h*3 {
				t.Fatalf("got %dx%d with %d bytes", got.Width, got.Height, len(got.Pix))
			}
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					r, g, b := tc.want(x, y)
					p := got.Pix[3*(y*w+x):]
					if p[0] != r || p[1] != g || p[2] != b {
						t.Fatalf("(%d,%d) = (%d,%d,%d), want (%d,%d,%d)", x, y, p[0], p[1], p[2], r, g, b)
					}
				}
			}
		})
	}
}

// TestPNGNamedJPEG runs a PNG whose key says .JPEG through the stage: content decides.
func TestPNGNamedJPEG(t *testing.T) {
	src := testPhoto(9, 4)
	budget := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 1 << 20, Decoded: 1 << 20, Views: 1, Batches: 1})
	it := &pipeline.Item{Meta: pipeline.Meta{Key: "n02105855/n02105855_2933.JPEG", Shard: "train-0001.tar"}}
	it.Encoded = encodePNG(t, src)
	if err := (&Decoder{}).Stage(budget.Decoded)(t.Context(), it); err != nil {
		t.Fatal(err)
	}
	if maxD, _ := diff(t, it.Image, rgbOf(src)); maxD != 0 {
		t.Fatalf("PNG named .JPEG decoded with max diff %d", maxD)
	}
}

// TestStageBudget checks the stage's bookkeeping: pixels come from the decoded account, the
// encoded bytes go back to theirs, and Release returns everything.
func TestStageBudget(t *testing.T) {
	data := encodeJPEG(t, testPhoto(64, 48))
	budget := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 1 << 20, Decoded: 1 << 20, Views: 1, Batches: 1})
	it := &pipeline.Item{Meta: pipeline.Meta{Key: "k"}}
	enc, err := budget.Encoded.Alloc(t.Context(), it, len(data))
	if err != nil {
		t.Fatal(err)
	}
	copy(enc, data)
	it.Encoded = enc
	if err := (&Decoder{}).Stage(budget.Decoded)(t.Context(), it); err != nil {
		t.Fatal(err)
	}
	if it.Image.Width != 64 || it.Image.Height != 48 || len(it.Image.Pix) != 64*48*3 {
		t.Fatalf("image %dx%d, %d bytes", it.Image.Width, it.Image.Height, len(it.Image.Pix))
	}
	if it.Encoded != nil || budget.Encoded.InUse() != 0 {
		t.Fatalf("encoded bytes not released: %d in use", budget.Encoded.InUse())
	}
	if budget.Decoded.InUse() < 64*48*3 {
		t.Fatalf("decoded account holds %d bytes, want at least %d", budget.Decoded.InUse(), 64*48*3)
	}
	it.Release()
	if budget.Decoded.InUse() != 0 {
		t.Fatalf("decoded account still holds %d bytes", budget.Decoded.InUse())
	}
}

// TestStageErrors checks that bad images become SampleErrors naming the sample, and that an
// image larger than the whole decoded account is too_large rather than a stalled run.
func TestStageErrors(t *testing.T) {
	budget := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 1 << 20, Decoded: 8192, Views: 1, Batches: 1})
	stage := (&Decoder{}).Stage(budget.Decoded)
	for _, tc := range []struct {
		name, reason string
		data         []byte
	}{
		{"empty", pipeline.ReasonEmpty, nil},
		{"gif", pipeline.ReasonUnsupported, []byte("GIF89a\x01\x00\x01\x00")},
		{"over budget", pipeline.ReasonTooLarge, encodeJPEG(t, testPhoto(100, 100))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := &pipeline.Item{Meta: pipeline.Meta{Key: "000042", Shard: "s.tar"}, Encoded: tc.data}
			err := stage(t.Context(), it)
			se, ok := pipeline.AsSampleError(err)
			if !ok {
				t.Fatalf("want a SampleError, got %v", err)
			}
			if se.Reason != tc.reason || se.Meta.Key != "000042" {
				t.Fatalf("got %v, want reason %s for 000042", se, tc.reason)
			}
		})
	}
}

// jpegSOF returns the offset of the first baseline/progressive SOF segment's marker.
func jpegSOF(t testing.TB, data []byte) int {
	t.Helper()
	for _, m := range [][]byte{{0xFF, 0xC0}, {0xFF, 0xC2}} {
		if i := bytes.Index(data, m); i >= 0 {
			return i
		}
	}
	t.Fatal("no SOF marker")
	return 0
}

func TestCorrupt(t *testing.T) {
	good := encodeJPEG(t, testPhoto(32, 32))
	noComponents := append([]byte(nil), good...)
	noComponents[jpegSOF(t, good)+9] = 0 // SOF: FF C0, length(2), precision, h(2), w(2), Nf
	badPNG := encodePNG(t, testPhoto(8, 8))
	badPNG[len(badPNG)-20] ^= 0xFF // inside the last IDAT or its CRC
	cases := []struct {
		name string
		data []byte
	}{
		{"jpeg sof without components", noComponents},
		{"jpeg garbage after magic", append([]byte{0xFF, 0xD8, 0xFF}, bytes.Repeat([]byte{0x13, 0x37}, 200)...)},
		{"jpeg magic only", []byte{0xFF, 0xD8, 0xFF}},
		{"png bad checksum", badPNG},
	}
	forEachBackend(t, func(t *testing.T, d *Decoder) {
		for _, tc := range cases {
			_, err := d.Decode(tc.data, nil)
			if r := reasonOf(t, err); r != pipeline.ReasonCorrupt {
				t.Fatalf("%s: reason %s (%v), want %s", tc.name, r, err, pipeline.ReasonCorrupt)
			}
			t.Logf("%s: %v", tc.name, err)
		}
	})
}

func TestTruncated(t *testing.T) {
	jpg := encodeJPEG(t, testPhoto(64, 64))
	pngData := encodePNG(t, testPhoto(64, 64))
	forEachBackend(t, func(t *testing.T, d *Decoder) {
		for _, data := range [][]byte{jpg[:len(jpg)*6/10], jpg[:len(jpg)-2], pngData[:len(pngData)/2]} {
			_, err := d.Decode(data, nil)
			if r := reasonOf(t, err); r != pipeline.ReasonCorrupt || !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("%d of %d bytes: got %v, want %s saying truncated", len(data), len(jpg), err, pipeline.ReasonCorrupt)
			}
		}
	})
}

func TestEmpty(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *Decoder) {
		for _, data := range [][]byte{nil, {}} {
			if _, err := d.Decode(data, nil); reasonOf(t, err) != pipeline.ReasonEmpty {
				t.Fatalf("got %v, want %s", err, pipeline.ReasonEmpty)
			}
		}
	})
}

func TestUnknownFormat(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		says string
	}{
		{[]byte("GIF89a\x10\x00\x10\x00"), "GIF"},
		{[]byte("RIFF\x24\x00\x00\x00WEBPVP8 "), "WebP"},
		{[]byte("hello, world"), "68 65 6c 6c 6f 2c 20 77"},
		{[]byte{0xFF, 0xD8}, "ff d8"}, // too short for the JPEG magic
	} {
		_, err := DecodeBytes(tc.data, nil)
		if reasonOf(t, err) != pipeline.ReasonUnsupported || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%q: got %v, want %s mentioning %q", tc.data, err, pipeline.ReasonUnsupported, tc.says)
		}
	}
}

// setJPEGSize rewrites the dimensions in a JPEG's SOF header.
func setJPEGSize(t testing.TB, data []byte, w, h int) []byte {
	out := append([]byte(nil), data...)
	i := jpegSOF(t, out)
	out[i+5], out[i+6] = byte(h>>8), byte(h)
	out[i+7], out[i+8] = byte(w>>8), byte(w)
	return out
}

// setPNGSize rewrites the dimensions in a PNG's IHDR and fixes its CRC.
func setPNGSize(data []byte, w, h int) []byte {
	out := append([]byte(nil), data...)
	ihdr := out[8+4 : 8+4+4+13] // chunk type and data
	binary.BigEndian.PutUint32(ihdr[4:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[8:], uint32(h))
	binary.BigEndian.PutUint32(out[8+4+4+13:], crc32.ChecksumIEEE(ihdr))
	return out
}

// TestTooLarge: a header that declares a huge image is refused from the header alone; neither
// our buffer nor a decoder's own image is ever allocated.
func TestTooLarge(t *testing.T) {
	bombs := []struct {
		name, msg string
		data      []byte
	}{
		{"jpeg", "JPEG header: 30000x30000 = 900 Mpx exceeds decode.max_pixels 64 Mpx",
			setJPEGSize(t, encodeJPEG(t, testPhoto(16, 16)), 30000, 30000)},
		{"png", "PNG header: 40000x20000 = 800 Mpx exceeds decode.max_pixels 64 Mpx",
			setPNGSize(encodePNG(t, testPhoto(16, 16)), 40000, 20000)},
	}
	for _, bomb := range bombs {
		forEachBackend(t, func(t *testing.T, d *Decoder) {
			t.Run(bomb.name, func(t *testing.T) {
				allocs := 0
				alloc := func(n int) ([]byte, error) { allocs++; return make([]byte, n), nil }
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				_, err := d.Decode(bomb.data, alloc)
				runtime.ReadMemStats(&after)
				if reasonOf(t, err) != pipeline.ReasonTooLarge {
					t.Fatalf("got %v, want %s", err, pipeline.ReasonTooLarge)
				}
				if !strings.HasSuffix(err.Error(), bomb.msg) {
					t.Fatalf("message %q, want it to end with %q", err, bomb.msg)
				}
				if allocs != 0 {
					t.Fatalf("alloc called %d times for a rejected image", allocs)
				}
				if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
					t.Fatalf("rejecting the header allocated %d MB", grew>>20)
				}
			})
		})
	}

	// The limit is inclusive and configurable.
	data := encodeJPEG(t, testPhoto(64, 48))
	forEachBackend(t, func(t *testing.T, d *Decoder) {
		d.MaxPixels = 64 * 48
		if _, err := d.Decode(data, nil); err != nil {
			t.Fatalf("image of exactly MaxPixels: %v", err)
		}
		d.MaxPixels = 64*48 - 1
		if _, err := d.Decode(data, nil); reasonOf(t, err) != pipeline.ReasonTooLarge {
			t.Fatalf("got %v, want %s", err, pipeline.ReasonTooLarge)
		}
	})
}

// TestConcurrent decodes from many goroutines at once (run it with -race): TurboJPEG handles
// must never be shared.
func TestConcurrent(t *testing.T) {
	images := [][]byte{
		encodeJPEG(t, testPhoto(64, 48)), encodeJPEG(t, testPhoto(33, 17)), readFile(t, "cmyk.jpg"),
	}
	want := make([]pipeline.Image, len(images))
	for i, data := range images {
		var err error
		if want[i], err = DecodeBytes(data, nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 50; i++ {
				k := (g + i) % len(images)
				got, err := DecodeBytes(images[k], nil)
				if err == nil && !bytes.Equal(got.Pix, want[k].Pix) {
					err = fmt.Errorf("image %d decoded differently under concurrency", k)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestBackend(t *testing.T) {
	want := "image/jpeg"
	if len(backends()) == 2 {
		want = "libjpeg-turbo 2.1.5"
	}
	if Backend() != want {
		t.Fatalf("Backend() = %q, want %q", Backend(), want)
	}
}
