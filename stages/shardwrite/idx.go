package shardwrite

import (
	"bytes"
	"fmt"
	"image"
	"image/png"

	"pipeline/internal/idx"
)

// idxSamples pairs an IDX image file (n x rows x cols) with an IDX label file (n).
type idxSamples struct {
	images, labels *idx.File
}

func openIDX(imagesPath, labelsPath string) (*idxSamples, error) {
	images, err := idx.Read(imagesPath, 0, 0)
	if err != nil {
		return nil, err
	}
	labels, err := idx.Read(labelsPath, 0, 0)
	if err != nil {
		return nil, err
	}
	if len(images.Dims) != 3 || len(labels.Dims) != 1 || images.Dims[0] != labels.Dims[0] {
		return nil, fmt.Errorf("IDX images %v and labels %v: want n x rows x cols images and n labels", images.Dims, labels.Dims)
	}
	return &idxSamples{images: images, labels: labels}, nil
}

func (s *idxSamples) count() int { return s.images.Dims[0] }

// sample encodes image i as a grayscale PNG.
func (s *idxSamples) sample(i int) (Sample, error) {
	rows, cols := s.images.Dims[1], s.images.Dims[2]
	n := rows * cols
	img := &image.Gray{Pix: s.images.Data[i*n : (i+1)*n], Stride: cols, Rect: image.Rect(0, 0, cols, rows)}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Sample{}, fmt.Errorf("IDX image %d: %w", i, err)
	}
	return Sample{Image: buf.Bytes(), Ext: "png", Label: int(s.labels.Data[i])}, nil
}
