package shardwrite

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// mtime is the modification time of every member, so that the same input gives byte-identical
// shards.
var mtime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Sample is one sample to write: members key.ext (the image) and key.cls (the label).
type Sample struct {
	Key   string
	Ext   string // "jpg" or "png"
	Image []byte
	Label int
}

// Writer writes samples into numbered shards of perShard samples each.
type Writer struct {
	pattern  string
	perShard int
	log      io.Writer

	shard   int // number of the open shard
	inShard int
	file    *os.File
	buf     *bufio.Writer
	gz      *gzip.Writer
	tw      *tar.Writer
	written []string

	// Done, when set, is called with each shard once it is complete on disk (an upload to
	// object storage, say); its error fails the shard.
	Done func(shard int, path string) error
}

// CheckPattern checks that pattern holds exactly one integer verb, such as %06d.
func CheckPattern(pattern string) error {
	if strings.Count(strings.ReplaceAll(pattern, "%%", ""), "%") != 1 {
		return fmt.Errorf("--out %q: want exactly one integer verb for the shard number, as in out/train-%%06d.tar", pattern)
	}
	a, b := fmt.Sprintf(pattern, 0), fmt.Sprintf(pattern, 1)
	if a == b || strings.Contains(a, "%!") {
		return fmt.Errorf("--out %q: the verb must format an integer, as %%06d does", pattern)
	}
	return nil
}

// NewWriter makes a writer; log gets one line a shard. Shards whose name ends in .gz are
// gzip-compressed.
func NewWriter(pattern string, perShard int, log io.Writer) (*Writer, error) {
	if err := CheckPattern(pattern); err != nil {
		return nil, err
	}
	if perShard < 1 {
		return nil, fmt.Errorf("--per-shard %d: want at least 1", perShard)
	}
	return &Writer{pattern: pattern, perShard: perShard, log: log, shard: -1}, nil
}

// Add writes one sample, starting a new shard when the open one is full.
func (w *Writer) Add(s Sample) error {
	if w.tw == nil || w.inShard == w.perShard {
		if err := w.closeShard(); err != nil {
			return err
		}
		if err := w.openShard(w.shard + 1); err != nil {
			return err
		}
	}
	if err := w.member(s.Key+"."+s.Ext, s.Image); err != nil {
		return err
	}
	if err := w.member(s.Key+".cls", []byte(fmt.Sprint(s.Label))); err != nil {
		return err
	}
	w.inShard++
	return nil
}

// Close finishes the last shard and returns the paths written, one that failed included.
func (w *Writer) Close() ([]string, error) {
	err := w.closeShard()
	return w.written, err
}

func (w *Writer) member(name string, data []byte) error {
	hdr := &tar.Header{
		Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)),
		ModTime: mtime, Format: tar.FormatUSTAR,
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %s: %w", w.file.Name(), name, err)
	}
	if _, err := w.tw.Write(data); err != nil {
		return fmt.Errorf("%s: %s: %w", w.file.Name(), name, err)
	}
	return nil
}

func (w *Writer) openShard(n int) error {
	path := fmt.Sprintf(w.pattern, n)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w.shard, w.inShard, w.file = n, 0, f
	w.buf = bufio.NewWriterSize(f, 1<<20)
	var out io.Writer = w.buf
	if strings.HasSuffix(path, ".gz") {
		w.gz, _ = gzip.NewWriterLevel(w.buf, gzip.BestCompression) // a valid level never fails
		out = w.gz
	}
	w.tw = tar.NewWriter(out)
	return nil
}

func (w *Writer) closeShard() error {
	if w.tw == nil {
		return nil
	}
	err := w.tw.Close()
	if w.gz != nil {
		err = errors.Join(err, w.gz.Close())
	}
	err = errors.Join(err, w.buf.Flush(), w.file.Close())
	name := w.file.Name()
	// A shard that failed is listed too (and not closed again): the caller removes it with
	// the others.
	w.written = append(w.written, name)
	w.tw, w.gz, w.buf, w.file = nil, nil, nil, nil
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	fmt.Fprintf(w.log, "wrote %s: %d samples\n", name, w.inShard)
	if w.Done != nil {
		return w.Done(w.shard, name)
	}
	return nil
}
