// Package null is a sink that only counts what it gets: the pipeline's speed without a
// consumer, and (with a delay) a slow consumer for backpressure tests.
package null

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"pipeline/schema"
	"pipeline/sink"
)

// Config is the sink: block for kind: null.
type Config struct {
	// Delay holds each batch this long before releasing it, as a slow trainer step would.
	Delay time.Duration `yaml:"delay"`
}

// Sink counts batches, samples and bytes.
type Sink struct {
	delay                   time.Duration
	batches, samples, bytes atomic.Int64
}

// New returns a null sink.
func New(cfg Config) *Sink { return &Sink{delay: cfg.Delay} }

// Write counts rec, waits out the delay (or until ctx ends) and releases rec.
func (s *Sink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	defer rec.Release()
	s.batches.Add(1)
	s.samples.Add(rec.NumRows())
	s.bytes.Add(schema.RecordBytes(rec))
	if s.delay <= 0 {
		return nil
	}
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close does nothing: the sink holds no batch between writes.
func (s *Sink) Close() error { return nil }

// Summary reports the counts.
func (s *Sink) Summary() map[string]any {
	return map[string]any{
		"batches": s.batches.Load(),
		"samples": s.samples.Load(),
		"bytes":   s.bytes.Load(),
	}
}

var _ sink.Sink = (*Sink)(nil)
