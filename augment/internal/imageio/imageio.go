// Package imageio finds the project's shared test data and converts images between
// pipeline.Image and the standard library (PNG and JPEG), for tests and the CLI.
package imageio

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"

	"pipeline/internal/repo"
	"pipeline/pipeline"
	"pipeline/stages/decode"
)

// SharedDir returns <repo root>/../shared (see package repo).
func SharedDir(dir string) (string, error) { return repo.SharedDir(dir) }

// Load decodes the image file at path with the pipeline's own decoder (libjpeg-turbo when
// built with cgo), so that the views made from a file match the views the pipeline makes from
// the same bytes in a shard.
func Load(path string) (pipeline.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return pipeline.Image{}, err
	}
	im, err := decode.DecodeBytes(data, nil)
	if err != nil {
		return pipeline.Image{}, fmt.Errorf("%s: %w", path, err)
	}
	return im, nil
}

// FromImage converts any image.Image to packed RGB.
func FromImage(m image.Image) pipeline.Image {
	b := m.Bounds()
	out := pipeline.Image{Width: b.Dx(), Height: b.Dy(), Pix: make([]uint8, b.Dx()*b.Dy()*3)}
	i := 0
	switch m := m.(type) {
	case *image.RGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[(y-b.Min.Y)*m.Stride:]
			for x := 0; x < b.Dx(); x++ {
				copy(out.Pix[i:i+3], row[x*4:x*4+3])
				i += 3
			}
		}
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[(y-b.Min.Y)*m.Stride:]
			for x := 0; x < b.Dx(); x++ {
				copy(out.Pix[i:i+3], row[x*4:x*4+3])
				i += 3
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = c.R, c.G, c.B
				i += 3
			}
		}
	}
	return out
}

// ToImage wraps a packed RGB image as an opaque image.NRGBA (copying it).
func ToImage(im pipeline.Image) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, im.Width, im.Height))
	for i, j := 0, 0; i+2 < len(im.Pix); i, j = i+3, j+4 {
		m.Pix[j], m.Pix[j+1], m.Pix[j+2], m.Pix[j+3] = im.Pix[i], im.Pix[i+1], im.Pix[i+2], 255
	}
	return m
}

// WritePNG writes im as a PNG file, making its folder if needed (as --out DIR does for views).
func WritePNG(path string, im pipeline.Image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, ToImage(im)); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
