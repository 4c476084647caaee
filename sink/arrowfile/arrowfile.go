// Package arrowfile is a sink that writes the batches as an Arrow IPC stream to a file or to
// stdout, readable by pyarrow.ipc.open_stream and arrow-go's ipc.NewReader.
package arrowfile

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"pipeline/sink"
)

// Config is the sink: block for kind: arrow-file.
type Config struct {
	Path string `yaml:"path"` // a file path, or - for stdout
}

// Sink writes an Arrow IPC stream. The stream's schema is the first batch's; every batch
// after it must have the same schema.
type Sink struct {
	path   string
	file   *os.File // nil for stdout
	buf    *bufio.Writer
	out    *countingWriter
	writer *ipc.Writer   // made on the first batch, which brings the schema
	schema *arrow.Schema // the stream's schema

	batches, samples atomic.Int64
	closed           bool
	failed           bool // the run failed (Fail): a file that got no batch is left as it was
}

// New opens the file at cfg.Path for writing, making the folders above it, so that a path that
// cannot be written fails before the run. The file is truncated at the first batch, or at Close
// of a run that ended well without one: a run that fails before producing anything leaves what
// an earlier run wrote there.
func New(cfg Config) (*Sink, error) {
	if cfg.Path == "" {
		return nil, errors.New("arrowfile: sink.path is empty (give a file path, or - for stdout)")
	}
	s := &Sink{path: cfg.Path}
	var w io.Writer = os.Stdout
	if cfg.Path != "-" {
		if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
			return nil, fmt.Errorf("arrowfile: %w", err)
		}
		// Read-write: a FIFO opened write-only would block here until a reader comes.
		f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil {
			return nil, fmt.Errorf("arrowfile: %w", err)
		}
		s.file, w = f, f
	}
	s.out = &countingWriter{w: w}
	s.buf = bufio.NewWriterSize(s.out, 1<<20)
	return s, nil
}

// Write appends rec to the stream and releases it. The batch is handed to the operating
// system before Write returns, so a process killed afterwards still leaves it in the file.
func (s *Sink) Write(_ context.Context, rec arrow.RecordBatch) error {
	defer rec.Release()
	if s.closed {
		return fmt.Errorf("arrowfile %s: Write after Close", s.path)
	}
	if s.writer == nil {
		if err := s.truncate(); err != nil {
			return err
		}
		s.schema = rec.Schema()
		s.writer = ipc.NewWriter(s.buf, ipc.WithSchema(s.schema))
	} else if !rec.Schema().Equal(s.schema) {
		return fmt.Errorf("arrowfile %s: batch %d has schema %s, the stream has %s",
			s.path, s.batches.Load()+1, rec.Schema(), s.schema)
	}
	if err := s.writer.Write(rec); err != nil {
		return fmt.Errorf("arrowfile %s: batch %d: %w", s.path, s.batches.Load()+1, err)
	}
	if err := s.buf.Flush(); err != nil {
		return fmt.Errorf("arrowfile %s: batch %d: %w", s.path, s.batches.Load()+1, err)
	}
	s.batches.Add(1)
	s.samples.Add(rec.NumRows())
	return nil
}

// truncate empties the file (nothing to do for stdout, a pipe or a device).
func (s *Sink) truncate() error {
	if s.file == nil {
		return nil
	}
	if fi, err := s.file.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	if err := s.file.Truncate(0); err != nil {
		return fmt.Errorf("arrowfile %s: %w", s.path, err)
	}
	return nil
}

// Fail marks the run failed: Close then leaves a file that got no batch as it was.
func (s *Sink) Fail(error) { s.failed = true }

// Close ends the stream, flushes it and closes the file (never stdout). A stream that got no
// batch has no schema to write, so the file is left empty, or as it was when the run failed.
func (s *Sink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.writer != nil {
		errs = append(errs, s.writer.Close()) // writes the end-of-stream marker
	} else if !s.failed {
		errs = append(errs, s.truncate())
	}
	errs = append(errs, s.buf.Flush())
	if s.file != nil {
		errs = append(errs, s.file.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("arrowfile %s: %w", s.path, err)
	}
	return nil
}

// Summary reports the path, the batches and samples written and the bytes that reached the
// file (complete after Close).
func (s *Sink) Summary() map[string]any {
	return map[string]any{
		"path":    s.path,
		"batches": s.batches.Load(),
		"samples": s.samples.Load(),
		"bytes":   s.out.n.Load(),
	}
}

type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

var (
	_ sink.Sink   = (*Sink)(nil)
	_ sink.Failer = (*Sink)(nil)
)
