package decode

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to every backend: no input may panic, a success must be a
// well-formed image within the pixel limit, and a failure must be a classified *Error.
// Seeds: testdata/fuzz/FuzzDecode and the JPEG fixtures.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"photo.jpg", "cmyk.jpg", "ycck.jpg"} {
		f.Add(readFile(f, name))
	}
	const maxPixels = 1 << 20 // keeps each fuzz run cheap
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, b := range backends() {
			d := &Decoder{MaxPixels: maxPixels, jpeg: b}
			img, err := d.Decode(data, nil)
			if err != nil {
				var bad *Error
				if !errors.As(err, &bad) || bad.Reason == "" {
					t.Fatalf("%s: unclassified error %T %v", b.name, err, err)
				}
				continue
			}
			if img.Width <= 0 || img.Height <= 0 || int64(img.Width)*int64(img.Height) > maxPixels ||
				len(img.Pix) != img.Width*img.Height*3 {
				t.Fatalf("%s: bad image %dx%d with %d bytes", b.name, img.Width, img.Height, len(img.Pix))
			}
		}
	})
}

// FuzzSniff checks that Sniff goes by the magic bytes alone and that naming an unknown format
// never fails.
func FuzzSniff(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		got := Sniff(data)
		want := FormatUnknown
		switch {
		case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}):
			want = FormatJPEG
		case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
			want = FormatPNG
		}
		if got != want {
			t.Fatalf("Sniff(% x...) = %v, want %v", data[:min(len(data), 8)], got, want)
		}
		if got == FormatUnknown && describeUnknown(data) == "" {
			t.Fatal("describeUnknown said nothing")
		}
	})
}
