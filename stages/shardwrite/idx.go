package shardwrite

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
)

// maxIDXBytes bounds the data of an IDX file (Fashion-MNIST train images: 47 MB).
const maxIDXBytes = 1 << 30

// IDX is an IDX file of unsigned bytes (the MNIST format): its dimensions and data.
type IDX struct {
	Dims []int
	Data []byte
}

// ReadIDX reads an IDX file of unsigned bytes, gzip-compressed or not (sniffed by magic).
func ReadIDX(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r = gz
	}
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, fmt.Errorf("%s: reading the IDX header: %w", path, err)
	}
	if head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] == 0 {
		return nil, fmt.Errorf("%s: not an IDX file of unsigned bytes (magic % x)", path, head)
	}
	idx := &IDX{Dims: make([]int, head[3])}
	size := int64(1)
	for i := range idx.Dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("%s: reading dimension %d: %w", path, i, err)
		}
		idx.Dims[i] = int(d)
		size *= int64(d)
		if size > maxIDXBytes {
			return nil, fmt.Errorf("%s: dimensions %v hold more than %d bytes", path, idx.Dims[:i+1], maxIDXBytes)
		}
	}
	idx.Data = make([]byte, size)
	if _, err := io.ReadFull(r, idx.Data); err != nil {
		return nil, fmt.Errorf("%s: dimensions %v need %d bytes: %w", path, idx.Dims, size, err)
	}
	return idx, nil
}

// idxSamples pairs an IDX image file (n x rows x cols) with an IDX label file (n).
type idxSamples struct {
	images, labels *IDX
}

func openIDX(imagesPath, labelsPath string) (*idxSamples, error) {
	images, err := ReadIDX(imagesPath)
	if err != nil {
		return nil, err
	}
	labels, err := ReadIDX(labelsPath)
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
