// Package idxdata pairs MNIST-style IDX images and labels (read by internal/idx), e.g.
// Fashion-MNIST, for the trainer's evaluation and tests.
package idxdata

import (
	"fmt"

	"pipeline/internal/idx"
)

// Images is a set of 8-bit grayscale images, row-major, each H x W.
type Images struct {
	N, H, W int
	Pix     []uint8
	Labels  []int32 // nil when read without labels
}

// Read loads an images file and its labels file (IDX3 ubyte and IDX1 ubyte, .gz or not).
// limit > 0 keeps only the first limit images.
func Read(imagesPath, labelsPath string, limit int) (*Images, error) {
	img, err := idx.Read(imagesPath, 3, limit)
	if err != nil {
		return nil, err
	}
	lab, err := idx.Read(labelsPath, 1, limit)
	if err != nil {
		return nil, err
	}
	if lab.Dims[0] != img.Dims[0] {
		return nil, fmt.Errorf("%s has %d images but %s has %d labels", imagesPath, img.Dims[0], labelsPath, lab.Dims[0])
	}
	labels := make([]int32, len(lab.Data))
	for i, l := range lab.Data {
		labels[i] = int32(l)
	}
	return &Images{N: img.Dims[0], H: img.Dims[1], W: img.Dims[2], Pix: img.Data, Labels: labels}, nil
}

// RGB returns image i as H x W x 3 bytes (the gray value in each channel).
func (im *Images) RGB(i int, dst []uint8) []uint8 {
	src := im.Pix[i*im.H*im.W : (i+1)*im.H*im.W]
	for _, v := range src {
		dst = append(dst, v, v, v)
	}
	return dst
}
