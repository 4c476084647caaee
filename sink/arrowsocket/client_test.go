package arrowsocket

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/sink/arrowsocket/batchtest"
)

// fakeProducer accepts one consumer, answers its handshake with "ok" and sends stream, then
// closes the connection: a producer that died part way.
func fakeProducer(t *testing.T, stream []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := readLine(conn); err != nil {
			return
		}
		conn.Write(append([]byte("ok\n"), stream...))
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "unix://" + path
}

// A stream that stops without its trailer, wherever it stops, is ErrAborted: the doc promises
// it for a lost connection, and the Python client raises StreamAborted for every one of these.
func TestReaderLostConnectionIsAborted(t *testing.T) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(small.Schema()))
	var ends []int
	for b := 0; b < 2; b++ {
		rec := batchtest.Batch(memory.DefaultAllocator, small, b)
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		ends = append(ends, buf.Len())
	}
	w.Close()
	data := buf.Bytes()
	for _, tc := range []struct {
		name  string
		sent  []byte
		batch int64 // batches the reader gets before the end
	}{
		{"before the schema", nil, 0},
		{"inside a batch", data[:(ends[0]+ends[1])/2], 1},
		{"between batches", data[:ends[0]], 1},
		{"after end-of-stream", data, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Dial(context.Background(), fakeProducer(t, tc.sent), 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var n int64
			for r.Next() {
				n++
			}
			if n != tc.batch || !errors.Is(r.Err(), ErrAborted) {
				t.Fatalf("read %d batches, then %v; want %d, then ErrAborted", n, r.Err(), tc.batch)
			}
		})
	}
}
