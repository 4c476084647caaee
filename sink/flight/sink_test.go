package flight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"pipeline/schema"
	"pipeline/sink/arrowsocket/batchtest"
)

var small = batchtest.Shape{Rows: 4, Height: 8, Width: 8}

func listen(t *testing.T, cfg Config) (*Sink, *memory.CheckedAllocator) {
	t.Helper()
	leaks := batchtest.LeakCheck(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	if cfg.Path == "" {
		cfg.Path = "127.0.0.1:0"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		mem.AssertSize(t, 0)
		leaks()
	})
	return s, mem
}

// readAll reads one rank's stream, checking every batch, with its own client.
func readAll(ctx context.Context, addr string, rank, world int, shape batchtest.Shape, opts ...grpc.DialOption) ([]int, error) {
	return readAllWith(ctx, Dialer{}, addr, rank, world, shape, opts...)
}

// readAllWith is readAll with d's security.
func readAllWith(ctx context.Context, d Dialer, addr string, rank, world int, shape batchtest.Shape, opts ...grpc.DialOption) ([]int, error) {
	c, err := d.Dial(addr, opts...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r, err := ReadRank(ctx, c, rank, world)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	return batchtest.Numbers(r, shape)
}

func TestRanksRoundTrip(t *testing.T) {
	for _, world := range []int{1, 2} {
		t.Run(fmt.Sprintf("world=%d", world), func(t *testing.T) {
			s, mem := listen(t, Config{World: world})
			batchtest.CheckRanks(t, s, mem, small, world, 7, func(rank int) ([]int, error) {
				return readAll(context.Background(), s.Address(), rank, world, small)
			})
		})
	}
}

// A batch over gRPC's 4 MiB default needs the raised limit Dial sets; without it the client
// fails with ResourceExhausted, and the producer sees its consumer lost.
func TestBatchesLargerThanGRPCDefault(t *testing.T) {
	big := batchtest.Shape{Rows: 16, Height: 224, Width: 224} // 4.8 MB of views
	for _, raised := range []bool{true, false} {
		t.Run(fmt.Sprintf("raised=%v", raised), func(t *testing.T) {
			s, mem := listen(t, Config{World: 1})
			ctx := context.Background()
			var opts []grpc.DialOption
			if !raised {
				opts = append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(4<<20)))
			}
			errs := make(chan error, 1)
			go func() { _, err := readAll(ctx, s.Address(), 0, 1, big, opts...); errs <- err }()
			writeErr := s.Write(ctx, batchtest.Batch(mem, big, 0))
			for b := 1; b < 3 && writeErr == nil; b++ {
				writeErr = s.Write(ctx, batchtest.Batch(mem, big, b))
			}
			closeErr := s.Close()
			readErr := <-errs
			if raised {
				if writeErr != nil || closeErr != nil || readErr != nil {
					t.Fatalf("write %v, close %v, read %v", writeErr, closeErr, readErr)
				}
				return
			}
			if status.Code(readErr) != codes.ResourceExhausted {
				t.Fatalf("reading a 4.8 MB batch with a 4 MiB limit: %v", readErr)
			}
			if writeErr == nil && closeErr == nil {
				t.Fatal("the producer did not notice its consumer failed")
			}
		})
	}
}

// No client: Write blocks once the rank's queue is full; a client then gets everything.
func TestWriteBlocksOnFullQueue(t *testing.T) {
	one := func() int64 {
		rec := batchtest.Batch(memory.DefaultAllocator, small, 0)
		defer rec.Release()
		return schema.RecordBytes(rec)
	}()
	s, mem := listen(t, Config{World: 1, QueueBytes: 2 * one})
	ctx := context.Background()
	written := make(chan int, 20)
	go func() {
		for b := 0; b < 20; b++ {
			if s.Write(ctx, batchtest.Batch(mem, small, b)) != nil {
				return
			}
			written <- b
		}
	}()
	<-written
	<-written
	select {
	case b := <-written:
		t.Fatalf("batch %d was accepted with no client and a full queue", b)
	case <-time.After(50 * time.Millisecond):
	}
	if q := s.QueuedBytes(); q > 2*one {
		t.Fatalf("%d bytes queued, limit %d", q, 2*one)
	}
	got := make(chan []int)
	go func() {
		b, err := readAll(ctx, s.Address(), 0, 1, small)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	for i := 2; i < 20; i++ {
		<-written
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; len(b) != 20 {
		t.Fatalf("read %d batches, want 20", len(b))
	}
}

// A client that cancels mid-stream fails the run; one of a failed run sees codes.Aborted.
func TestClientCancelAndProducerFailure(t *testing.T) {
	t.Run("client cancels", func(t *testing.T) {
		s, mem := listen(t, Config{World: 1, QueueBytes: 1})
		ctx, cancel := context.WithCancel(context.Background())
		c, err := Dial(s.Address())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			r, err := ReadRank(ctx, c, 0, 1)
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Release()
			r.Next()
			cancel()
		}()
		var writeErr error
		for b := 0; b < 1000 && writeErr == nil; b++ {
			writeErr = s.Write(context.Background(), batchtest.Batch(mem, small, b))
		}
		if writeErr == nil || !strings.Contains(writeErr.Error(), "rank 0 consumer") {
			t.Fatalf("Write after the client left: %v", writeErr)
		}
	})
	t.Run("producer fails", func(t *testing.T) {
		s, mem := listen(t, Config{World: 1})
		ctx := context.Background()
		errs := make(chan error, 1)
		go func() { _, err := readAll(ctx, s.Address(), 0, 1, small); errs <- err }()
		for b := 0; b < 3; b++ {
			if err := s.Write(ctx, batchtest.Batch(mem, small, b)); err != nil {
				t.Fatal(err)
			}
		}
		for s.QueuedBytes() > 0 { // let the client connect and take what is there
			time.Sleep(time.Millisecond)
		}
		s.Fail(errors.New("augment: out of cheese"))
		s.Close()
		if err := <-errs; status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), "out of cheese") {
			t.Fatalf("client of a failed run got %v", err)
		}
	})
}

func TestTicketsAndRefusals(t *testing.T) {
	for _, bad := range []string{"rank=0", "rank=a/world=2", "world=2/rank=0", ""} {
		if _, _, err := ParseTicket([]byte(bad)); err == nil {
			t.Errorf("ParseTicket(%q) accepted", bad)
		}
	}
	if r, w, err := ParseTicket(Ticket(1, 4)); err != nil || r != 1 || w != 4 {
		t.Errorf("Ticket(1, 4) reads back as %d %d %v", r, w, err)
	}
	s, _ := listen(t, Config{World: 2})
	ctx := context.Background()
	c, err := Dial(s.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = ReadRank(ctx, c, 0, 3)
	if status.Code(errors.Unwrap(err)) != codes.FailedPrecondition || !strings.Contains(err.Error(), "world size 3") {
		t.Fatalf("wrong world size: %v", err)
	}
}

// ReadRank's reader, released before the end, ends the stream: the producer's next Writes
// fail naming the rank, as the doc of ReadRank says, instead of blocking for good once gRPC's
// buffers are full while the client connection stays open.
func TestReleasedReaderEndsTheStream(t *testing.T) {
	mid := batchtest.Shape{Rows: 64, Height: 64, Width: 64} // 1.5 MB a batch
	s, mem := listen(t, Config{World: 1, QueueBytes: 1, CloseTimeout: time.Second})
	c, err := Dial(s.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // only at the end: the consumer process goes on
	read := make(chan error, 1)
	go func() {
		r, err := ReadRank(context.Background(), c, 0, 1)
		if err == nil {
			if !r.Next() {
				err = fmt.Errorf("no first batch: %v", r.Err())
			}
			r.Release()
		}
		read <- err
	}()
	writeErr := make(chan error, 1)
	go func() {
		var err error
		for b := 0; b < 1000 && err == nil; b++ {
			err = s.Write(context.Background(), batchtest.Batch(mem, mid, b))
		}
		writeErr <- err
	}()
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-writeErr:
		if err == nil || !strings.Contains(err.Error(), "rank 0 consumer") {
			t.Fatalf("Write after the reader was released: %v, want the rank's consumer lost", err)
		}
	case <-time.After(time.Minute): // a deadlock guard, not a timing
		s.Close() // unblocks the Write
		<-writeErr
		t.Fatal("Write still blocked a minute after the only reader was released")
	}
}

// Each batch carries its place in the stream to its rank, as the message's app_metadata.
func TestBatchesCarryTheirPositions(t *testing.T) {
	s, mem := listen(t, Config{World: 2})
	batchtest.CheckPositions(t, s, mem, small, 2, 3, 5, func(rank int) ([]map[string]string, error) {
		c, err := Dial(s.Address())
		if err != nil {
			return nil, err
		}
		defer c.Close()
		r, err := ReadRank(context.Background(), c, rank, 2)
		if err != nil {
			return nil, err
		}
		defer r.Release()
		var mds []map[string]string
		for r.Next() {
			var md map[string]string
			if err := json.Unmarshal(r.LatestAppMetadata(), &md); err != nil {
				return mds, fmt.Errorf("app_metadata %q: %w", r.LatestAppMetadata(), err)
			}
			mds = append(mds, md)
		}
		return mds, r.Err()
	})
}
