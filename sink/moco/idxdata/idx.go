// Package idxdata reads MNIST-style IDX files (optionally gzipped): 8-bit images and labels,
// e.g. Fashion-MNIST, for the trainer's evaluation and tests.
package idxdata

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
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
	img, err := readIDX(imagesPath, 3, limit)
	if err != nil {
		return nil, err
	}
	lab, err := readIDX(labelsPath, 1, limit)
	if err != nil {
		return nil, err
	}
	if lab.dims[0] != img.dims[0] {
		return nil, fmt.Errorf("%s has %d images but %s has %d labels", imagesPath, img.dims[0], labelsPath, lab.dims[0])
	}
	labels := make([]int32, len(lab.data))
	for i, l := range lab.data {
		labels[i] = int32(l)
	}
	return &Images{N: img.dims[0], H: img.dims[1], W: img.dims[2], Pix: img.data, Labels: labels}, nil
}

type idxFile struct {
	dims []int
	data []uint8
}

func readIDX(path string, rank, limit int) (*idxFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || int(magic[3]) != rank {
		return nil, fmt.Errorf("%s: magic %x, want unsigned-byte IDX of rank %d", path, magic, rank)
	}
	dims := make([]int, rank)
	size := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("%s: dimension %d: %w", path, i, err)
		}
		dims[i] = int(d)
		if i > 0 {
			size *= int(d)
		}
	}
	if limit > 0 && limit < dims[0] {
		dims[0] = limit
	}
	data := make([]uint8, dims[0]*size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("%s: %d items of %d bytes: %w", path, dims[0], size, err)
	}
	return &idxFile{dims: dims, data: data}, nil
}

// RGB returns image i as H x W x 3 bytes (the gray value in each channel).
func (im *Images) RGB(i int, dst []uint8) []uint8 {
	src := im.Pix[i*im.H*im.W : (i+1)*im.H*im.W]
	for _, v := range src {
		dst = append(dst, v, v, v)
	}
	return dst
}
