// Package decode is the decode stage: it turns the encoded JPEG or PNG bytes of an item into a
// packed 8-bit RGB image (HWC) held in a buffer from the run's memory budget.
//
// The format is sniffed from the content, never from the file name. The declared size is
// checked against a pixel limit before any pixel buffer exists, so a decompression bomb costs
// a header parse. JPEGs go through libjpeg-turbo when cgo is available and image/jpeg
// otherwise (see Backend); PNGs go through image/png. Colour handling follows Pillow's
// Image.convert("RGB"), which is what a PyTorch loader feeds its transforms.
package decode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"pipeline/pipeline"
)

// DefaultMaxPixels is the pixel limit of a Decoder whose MaxPixels is zero: 64 Mpx is about
// 200 MB of RGB, far above any ImageNet photo (the largest is under 20 Mpx).
const DefaultMaxPixels = 64_000_000

// Decoder decodes JPEG and PNG images into packed RGB. Its methods may be called from many
// goroutines at once.
type Decoder struct {
	// MaxPixels rejects images whose header declares more pixels (width*height) than this,
	// before decoding. Zero means DefaultMaxPixels.
	MaxPixels int64

	// jpeg overrides the JPEG backend; nil means the build's default (tests and benchmarks
	// use it to run both backends in one binary).
	jpeg *jpegBackend
}

// Error is a problem with the image bytes themselves. Reason is one of the pipeline.Reason*
// skip reasons.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func errorf(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Alloc returns a buffer of exactly n bytes for decoded pixels; its previous contents do not
// matter. It may fail (a cancelled run, say); the decoder passes that error on unchanged.
type Alloc func(n int) ([]byte, error)

// heapAlloc is the Alloc of callers without a memory budget.
func heapAlloc(n int) ([]byte, error) { return make([]byte, n), nil }

// DecodeBytes decodes data with the default pixel limit. alloc may be nil (plain make).
// A CMYK JPEG asks alloc for 4 bytes a pixel and is converted to RGB in place, so the returned
// Pix may be shorter than the buffer alloc gave.
func DecodeBytes(data []byte, alloc Alloc) (pipeline.Image, error) {
	var d Decoder
	return d.Decode(data, alloc)
}

// Decode sniffs the format of data, checks its declared size and decodes it into a buffer
// from alloc (nil means make). A problem with the bytes is an *Error; an error from alloc is
// returned as it is.
func (d *Decoder) Decode(data []byte, alloc Alloc) (pipeline.Image, error) {
	if alloc == nil {
		alloc = heapAlloc
	}
	if len(data) == 0 {
		return pipeline.Image{}, errorf(pipeline.ReasonEmpty, "zero-byte image")
	}
	switch Sniff(data) {
	case FormatJPEG:
		backend := d.jpeg
		if backend == nil {
			backend = &defaultJPEG
		}
		return backend.decode(data, d.checkSize, alloc)
	case FormatPNG:
		return decodePNG(data, d.checkSize, alloc)
	}
	return pipeline.Image{}, errorf(pipeline.ReasonUnsupported,
		"not a JPEG or PNG (%s, %d bytes)", describeUnknown(data), len(data))
}

// explainTruncation adds "truncated" to the error of a file whose header was fine but whose
// body failed and which lacks its end marker (JPEG EOI, PNG IEND): the usual cause is a partial
// download or copy, and image/jpeg's and image/png's words for it ("short Huffman data", "not
// enough pixel data") do not say so.
func explainTruncation(data []byte, bad *Error) *Error {
	if bad.Reason != pipeline.ReasonCorrupt || strings.Contains(bad.Err.Error(), "truncated") {
		return bad
	}
	tail := data[max(0, len(data)-1024):]
	if bytes.Contains(tail, jpegEOI) || bytes.Contains(tail, pngIEND) {
		return bad
	}
	return &Error{Reason: bad.Reason, Err: fmt.Errorf("truncated (no end marker): %w", bad.Err)}
}

var (
	jpegEOI = []byte{0xFF, 0xD9}
	pngIEND = []byte("IEND")
)

// Stage returns the decode stage function: it decodes it.Encoded into it.Image, taking the
// pixel buffer from acct, then gives the encoded bytes back. Bad images become
// *pipeline.SampleError with the matching reason.
func (d *Decoder) Stage(acct *pipeline.Account) pipeline.StageFunc {
	return func(ctx context.Context, it *pipeline.Item) error {
		alloc := func(n int) ([]byte, error) {
			buf, err := acct.Alloc(ctx, it, n)
			var over *pipeline.ErrOverBudget
			if errors.As(err, &over) {
				// Waiting would never end: this one image is too big for the run's budget.
				return nil, &Error{Reason: pipeline.ReasonTooLarge, Err: err}
			}
			return buf, err
		}
		img, err := d.Decode(it.Encoded, alloc)
		if err != nil {
			var bad *Error
			if errors.As(err, &bad) {
				return pipeline.Bad(it.Meta, bad.Reason, bad.Err)
			}
			return err
		}
		it.Image = img
		it.ReleaseEncoded()
		return nil
	}
}

func (d *Decoder) maxPixels() int64 {
	if d.MaxPixels > 0 {
		return d.MaxPixels
	}
	return DefaultMaxPixels
}

// checkSize vets the dimensions a header declares, before anything is allocated for them.
func (d *Decoder) checkSize(format Format, w, h int) error {
	if w <= 0 || h <= 0 {
		return errorf(pipeline.ReasonCorrupt, "%s header: %dx%d image has no pixels", format, w, h)
	}
	if px := int64(w) * int64(h); px > d.maxPixels() {
		return errorf(pipeline.ReasonTooLarge, "%s header: %dx%d = %s exceeds decode.max_pixels %s",
			format, w, h, mpx(px), mpx(d.maxPixels()))
	}
	return nil
}

// sizeCheck is Decoder.checkSize as the format decoders see it.
type sizeCheck func(format Format, w, h int) error

// mpx writes a pixel count in megapixels, exactly (64000001 is "64.000001 Mpx", not "64 Mpx").
func mpx(n int64) string {
	return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + " Mpx"
}

// jpegBackend is one JPEG decoder implementation.
type jpegBackend struct {
	name   string
	decode func(data []byte, check sizeCheck, alloc Alloc) (pipeline.Image, error)
}

// Backend names the JPEG decoder of this build: "libjpeg-turbo 2.1.5" with cgo, "image/jpeg"
// without.
func Backend() string { return defaultJPEG.name }
