package arrowsocket

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/monitor"
	"pipeline/sink/arrowsocket/batchtest"
)

// moco is one training batch: 256 samples x 2 views of 224x224x3, about 77 MB.
var moco = batchtest.Shape{Rows: 256, Height: 224, Width: 224}

// BenchmarkIPCDiscard is the baseline: the same IPC stream written to io.Discard.
func BenchmarkIPCDiscard(b *testing.B) {
	rec := batchtest.Batch(memory.DefaultAllocator, moco, 0)
	defer rec.Release()
	b.SetBytes(ipcBytes(b, rec))
	w := ipc.NewWriter(io.Discard, ipc.WithSchema(rec.Schema()))
	defer w.Close()
	b.ResetTimer()
	cpu0 := monitor.ProcessCPU()
	for i := 0; i < b.N; i++ {
		if err := w.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((monitor.ProcessCPU()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkSocket sends the batch through the sink to one consumer in this process, which
// either drains the bytes (raw: the transport alone) or decodes them with the Go IPC reader
// (ipc: what a Go trainer would pay on top). Close is timed, so every byte has arrived.
func BenchmarkSocket(b *testing.B) {
	for _, tc := range []struct{ name, network, consumer string }{
		{"unix/raw", "unix", "raw"}, {"unix/ipc", "unix", "ipc"}, {"tcp/raw", "tcp", "raw"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rec := batchtest.Batch(memory.DefaultAllocator, moco, 0)
			defer rec.Release()
			b.SetBytes(ipcBytes(b, rec))
			addr := "tcp://127.0.0.1:0"
			if tc.network == "unix" {
				addr = "unix://" + filepath.Join(b.TempDir(), "bench.sock")
			}
			s, err := New(Config{Path: addr, World: 1})
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- consume(s.Address(), tc.consumer) }()
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
			// CPU time of both ends together: what the transport costs the machine.
			b.ReportMetric(float64((monitor.ProcessCPU()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

func consume(addr, how string) error {
	if how == "ipc" {
		r, err := Dial(context.Background(), addr, 0, 1)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
		}
		return r.Err()
	}
	network, where, _ := ParseAddress(addr)
	conn, err := net.Dial(network, where)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, Hello{Rank: 0, World: 1}.line()); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, conn)
	return err
}

// ipcBytes is the size of rec's IPC message (and the small schema message), for MB/s figures.
func ipcBytes(b *testing.B, rec arrow.RecordBatch) int64 {
	var n countingWriter
	w := ipc.NewWriter(&n, ipc.WithSchema(rec.Schema()))
	defer w.Close()
	if err := w.Write(rec); err != nil {
		b.Fatal(err)
	}
	return int64(n)
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
