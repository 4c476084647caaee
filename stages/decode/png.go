package decode

import (
	"bytes"
	"image/png"

	"pipeline/pipeline"
)

func decodePNG(data []byte, check sizeCheck, alloc Alloc) (pipeline.Image, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return pipeline.Image{}, stdError("PNG header", err)
	}
	if err := check(FormatPNG, cfg.Width, cfg.Height); err != nil {
		return pipeline.Image{}, err
	}
	// image/png cannot decode into our buffer: it makes its own image, which we then copy.
	// PNGs are rare in photo datasets, so the extra copy is cheap overall.
	m, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return pipeline.Image{}, explainTruncation(data, stdError("PNG", err))
	}
	return toRGB(m, alloc)
}
