package flight

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/monitor"
	"pipeline/sink/arrowsocket/batchtest"
)

// BenchmarkFlight sends 256 x 2 x 224x224x3 batches (about 77 MB each) over loopback to one
// client in this process that decodes them. Compare with arrowsocket's BenchmarkSocket.
func BenchmarkFlight(b *testing.B) {
	moco := batchtest.Shape{Rows: 256, Height: 224, Width: 224}
	rec := batchtest.Batch(memory.DefaultAllocator, moco, 0)
	defer rec.Release()
	b.SetBytes(int64(moco.Rows * moco.ViewBytes() * 2))
	s, err := New(Config{Path: "127.0.0.1:0", World: 1})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		c, err := Dial(s.Address())
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		r, err := ReadRank(context.Background(), c, 0, 1)
		if err != nil {
			done <- err
			return
		}
		defer r.Release()
		for r.Next() {
		}
		done <- r.Err()
	}()
	ctx := context.Background()
	b.ResetTimer()
	cpu0 := monitor.ProcessCPU()
	for i := 0; i < b.N; i++ {
		rec.Retain() // Write takes one reference
		if err := s.Write(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((monitor.ProcessCPU()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}
