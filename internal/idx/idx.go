// Package idx reads IDX files of unsigned bytes (the MNIST format: Fashion-MNIST, say), plain
// or gzip-compressed. It is the one reader of the format: `pipeline shard` converts IDX files
// to shards with it, and `pipeline eval linear` reads its evaluation splits with it.
package idx

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// MaxBytes bounds the data read from one file (Fashion-MNIST's train images: 47 MB), so that a
// corrupt header cannot make the reader allocate what it says.
const MaxBytes = 1 << 30

// File is an IDX file of unsigned bytes: its dimensions and data.
type File struct {
	Dims []int
	Data []byte
}

// Read reads the IDX file at path, gzip-compressed or not (told by its magic, not its name).
// rank > 0 requires that many dimensions; limit > 0 reads only the first limit items of the
// first dimension.
func Read(path string, rank, limit int) (*File, error) {
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
		defer gz.Close()
		r = gz
	}
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, fmt.Errorf("%s: reading the IDX header: %w", path, err)
	}
	if head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] == 0 {
		return nil, fmt.Errorf("%s: not an IDX file of unsigned bytes (magic % x)", path, head)
	}
	if rank > 0 && int(head[3]) != rank {
		return nil, fmt.Errorf("%s: an IDX file of rank %d, want rank %d", path, head[3], rank)
	}
	file := &File{Dims: make([]int, head[3])}
	size := int64(1)
	for i := range file.Dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("%s: reading dimension %d: %w", path, i, err)
		}
		file.Dims[i] = int(d)
		if i == 0 && limit > 0 && limit < file.Dims[0] {
			file.Dims[0] = limit
		}
		size *= int64(file.Dims[i])
		if size > MaxBytes {
			return nil, fmt.Errorf("%s: dimensions %v hold more than %d bytes", path, file.Dims[:i+1], MaxBytes)
		}
	}
	file.Data = make([]byte, size)
	if _, err := io.ReadFull(r, file.Data); err != nil {
		return nil, fmt.Errorf("%s: dimensions %v need %d bytes: %w", path, file.Dims, size, err)
	}
	return file, nil
}
