package decode

import "bytes"

// Format is an image container recognised by its leading bytes.
type Format int

const (
	FormatUnknown Format = iota
	FormatJPEG
	FormatPNG
)

func (f Format) String() string {
	switch f {
	case FormatJPEG:
		return "JPEG"
	case FormatPNG:
		return "PNG"
	}
	return "unknown"
}

var (
	jpegMagic = []byte{0xFF, 0xD8, 0xFF}
	pngMagic  = []byte("\x89PNG\r\n\x1a\n")
)

// Sniff names the format of data from its magic bytes, never from a file name: ImageNet holds
// PNGs named .JPEG.
func Sniff(data []byte) Format {
	switch {
	case bytes.HasPrefix(data, jpegMagic):
		return FormatJPEG
	case bytes.HasPrefix(data, pngMagic):
		return FormatPNG
	}
	return FormatUnknown
}

// otherFormats are formats we do not decode but can name, so a skip message says "GIF" rather
// than only "unknown".
var otherFormats = []struct {
	magic []byte
	name  string
}{
	{[]byte("GIF87a"), "GIF"},
	{[]byte("GIF89a"), "GIF"},
	{[]byte("BM"), "BMP"},
	{[]byte("II*\x00"), "TIFF"},
	{[]byte("MM\x00*"), "TIFF"},
	{[]byte("\x00\x00\x00\x0cjP  "), "JPEG 2000"},
	{[]byte("\xff\x4f\xff\x51"), "JPEG 2000"},
}

// describeUnknown says what data looks like, for the error message of an unsupported format.
func describeUnknown(data []byte) string {
	if len(data) >= 12 && bytes.Equal(data[:4], []byte("RIFF")) && bytes.Equal(data[8:12], []byte("WEBP")) {
		return "WebP"
	}
	if len(data) >= 12 && bytes.Equal(data[4:8], []byte("ftyp")) {
		return "ISO media (HEIF/AVIF)"
	}
	for _, o := range otherFormats {
		if bytes.HasPrefix(data, o.magic) {
			return o.name
		}
	}
	n := min(len(data), 8)
	return "unrecognised leading bytes " + hexBytes(data[:n])
}

func hexBytes(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 3*len(b))
	for i, c := range b {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
