package decode

import (
	"bytes"
	"errors"
	"image/jpeg"
	"image/png"
	"io"

	"pipeline/pipeline"
)

// stdJPEG is the pure-Go JPEG backend: the default without cgo, and the baseline the
// benchmark compares libjpeg-turbo with.
var stdJPEG = jpegBackend{name: "image/jpeg", decode: decodeJPEGStd}

func decodeJPEGStd(data []byte, check sizeCheck, alloc Alloc) (pipeline.Image, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return pipeline.Image{}, stdError("JPEG header", err)
	}
	if err := check(FormatJPEG, cfg.Width, cfg.Height); err != nil {
		return pipeline.Image{}, err
	}
	m, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return pipeline.Image{}, explainTruncation(data, stdError("JPEG", err))
	}
	return toRGB(m, alloc)
}

// stdError classifies an error of image/jpeg or image/png.
func stdError(what string, err error) *Error {
	var ju jpeg.UnsupportedError
	var pu png.UnsupportedError
	if errors.As(err, &ju) || errors.As(err, &pu) {
		return errorf(pipeline.ReasonUnsupported, "%s: %w", what, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errorf(pipeline.ReasonCorrupt, "%s: truncated: %w", what, err)
	}
	return errorf(pipeline.ReasonCorrupt, "%s: %w", what, err)
}
