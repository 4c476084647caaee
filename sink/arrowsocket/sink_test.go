package arrowsocket

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/goccy/go-yaml"

	"pipeline/schema"
	"pipeline/sink/arrowsocket/batchtest"
	"pipeline/sink/rankqueue"
)

var small = batchtest.Shape{Rows: 4, Height: 8, Width: 8}

// addresses lists one Unix socket and one TCP address for a test.
func addresses(t *testing.T) map[string]string {
	return map[string]string{
		"unix": "unix://" + filepath.Join(t.TempDir(), "p.sock"),
		"tcp":  "tcp://127.0.0.1:0",
	}
}

// listen opens a sink whose records come from a checked allocator, and checks at cleanup that
// every record was released and no goroutine is left.
func listen(t *testing.T, cfg Config) (*Sink, *memory.CheckedAllocator) {
	t.Helper()
	leaks := batchtest.LeakCheck(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
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

// readAll reads one rank's stream and checks every batch against what batchtest builds.
func readAll(ctx context.Context, addr string, rank, world int, shape batchtest.Shape) ([]int, error) {
	return readAllWith(ctx, Dialer{}, addr, rank, world, shape)
}

// readAllWith is readAll with d's security.
func readAllWith(ctx context.Context, d Dialer, addr string, rank, world int, shape batchtest.Shape) ([]int, error) {
	r, err := d.Dial(ctx, addr, rank, world)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return batchtest.Numbers(r, shape)
}

func TestRoundTrip(t *testing.T) {
	for name, addr := range addresses(t) {
		t.Run(name, func(t *testing.T) {
			s, mem := listen(t, Config{Path: addr, World: 1})
			ctx := context.Background()
			var got []int
			var readErr error
			done := make(chan struct{})
			go func() {
				defer close(done)
				got, readErr = readAll(ctx, s.Address(), 0, 1, small)
			}()
			for b := 0; b < 10; b++ {
				if err := s.Write(ctx, batchtest.Batch(mem, small, b)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			<-done
			if readErr != nil {
				t.Fatal(readErr)
			}
			if fmt.Sprint(got) != "[0 1 2 3 4 5 6 7 8 9]" {
				t.Fatalf("read batches %v, want 0..9 in order", got)
			}
		})
	}
}

// Ranks take batch i when i mod world is their rank: disjoint, together everything, in order.
// World 0 lets the consumers' handshake set it.
func TestRanksAreDisjointAndComplete(t *testing.T) {
	for _, configured := range []int{3, 0} {
		t.Run(fmt.Sprintf("configured_world=%d", configured), func(t *testing.T) {
			s, mem := listen(t, Config{Path: "tcp://127.0.0.1:0", World: configured})
			const world = 3
			batchtest.CheckRanks(t, s, mem, small, world, 11, func(rank int) ([]int, error) {
				return readAll(context.Background(), s.Address(), rank, world, small)
			})
		})
	}
}

// With no consumer, Write blocks once the queue is full; a slow consumer then keeps the
// producer's live records within the queue bound, and gets everything.
func TestSlowConsumerBoundsProducerMemory(t *testing.T) {
	const perQueue = 3
	s, mem := listen(t, Config{Path: "unix://" + filepath.Join(t.TempDir(), "p.sock"), World: 1,
		QueueBytes: perQueue * recordBytesOf(t)})
	ctx := context.Background()

	written := make(chan int, 100)
	writeErr := make(chan error, 1)
	go func() {
		for b := 0; b < 40; b++ {
			if err := s.Write(ctx, batchtest.Batch(mem, small, b)); err != nil {
				writeErr <- err
				return
			}
			written <- b
		}
		writeErr <- nil
	}()
	for i := 0; i < perQueue; i++ {
		<-written
	}
	select {
	case b := <-written:
		t.Fatalf("batch %d was accepted with no consumer and a full queue", b)
	case <-time.After(50 * time.Millisecond):
	}
	if got, limit := s.QueuedBytes(), perQueue*recordBytesOf(t); got > limit {
		t.Fatalf("%d bytes queued, limit %d", got, limit)
	}

	r, err := Dial(ctx, s.Address(), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Queue + one record being built by the producer + one being written to the socket.
	bound := (perQueue+2)*recordBytesOf(t) + 64<<10
	n := 0
	for ; n < 40 && r.Next(); n++ {
		if err := batchtest.Check(r.RecordBatch(), small, n); err != nil {
			t.Fatal(err)
		}
		// The consumer's own copy comes from Go's allocator, not mem: mem is the producer.
		if live := int64(mem.CurrentAlloc()); live > bound {
			t.Fatalf("after %d batches the producer holds %d bytes, bound %d", n, live, bound)
		}
		time.Sleep(time.Millisecond)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if r.Next() || r.Err() != nil || n != 40 {
		t.Fatalf("read %d batches, want 40 then a clean end (err %v)", n, r.Err())
	}
}

// recordBytesOf is the queue size of one small batch.
func recordBytesOf(t *testing.T) int64 {
	rec := batchtest.Batch(memory.DefaultAllocator, small, 0)
	defer rec.Release()
	return schema.RecordBytes(rec)
}

// A consumer that leaves mid-stream fails the run: Write returns an error naming the rank,
// and nothing queued leaks.
func TestConsumerDisconnectFailsTheRun(t *testing.T) {
	s, mem := listen(t, Config{Path: "unix://" + filepath.Join(t.TempDir(), "p.sock"), World: 1,
		QueueBytes: 2 * recordBytesOf(t)})
	ctx := context.Background()
	r, err := Dial(ctx, s.Address(), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	readDone := make(chan error, 1)
	go func() {
		for i := 0; i < 2; i++ {
			if !r.Next() {
				readDone <- fmt.Errorf("stream ended after %d batches: %v", i, r.Err())
				return
			}
		}
		readDone <- r.Close()
	}()
	var writeErr error
	for b := 0; b < 1000 && writeErr == nil; b++ {
		writeErr = s.Write(ctx, batchtest.Batch(mem, small, b))
	}
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
	if writeErr == nil || !strings.Contains(writeErr.Error(), "rank 0 consumer") || !strings.Contains(writeErr.Error(), "lost after") {
		t.Fatalf("Write after the consumer left: %v, want an error naming rank 0", writeErr)
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close after a lost consumer returned no error")
	}
}

// After Fail, consumers see the stream end with an error, not a clean end.
func TestFailedRunEndsStreamsWithError(t *testing.T) {
	s, mem := listen(t, Config{Path: "tcp://127.0.0.1:0", World: 2})
	ctx := context.Background()
	errs := make(chan error, 2)
	for rank := 0; rank < 2; rank++ {
		r, err := Dial(ctx, s.Address(), rank, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		go func() {
			for r.Next() {
			}
			errs <- r.Err()
		}()
	}
	for b := 0; b < 4; b++ {
		if err := s.Write(ctx, batchtest.Batch(mem, small, b)); err != nil {
			t.Fatal(err)
		}
	}
	s.Fail(errors.New("decode: disk on fire"))
	s.Close()
	for r := 0; r < 2; r++ {
		if err := <-errs; !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("a consumer of a failed run got %v, want ErrAborted with the cause", err)
		}
	}
}

// A cancelled Write aborts too: its record is released and Close ends streams with an error.
func TestCancelledWrite(t *testing.T) {
	s, mem := listen(t, Config{Path: "tcp://127.0.0.1:0", World: 1, QueueBytes: 1})
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Write(ctx, batchtest.Batch(mem, small, 0)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := s.Write(ctx, batchtest.Batch(mem, small, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write on a full queue with a cancelled context: %v", err)
	}
	s.Close()
}

// Close gives up on a rank nobody reads after CloseTimeout, says so, and releases its batches.
func TestCloseTimesOutWithoutConsumer(t *testing.T) {
	s, mem := listen(t, Config{Path: "tcp://127.0.0.1:0", World: 2, CloseTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	r, err := Dial(ctx, s.Address(), 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	errs := make(chan error, 1)
	go func() {
		for r.Next() {
		}
		errs <- r.Err()
	}()
	for b := 0; b < 4; b++ {
		if err := s.Write(ctx, batchtest.Batch(mem, small, b)); err != nil {
			t.Fatal(err)
		}
	}
	err = s.Close()
	if err == nil || !strings.Contains(err.Error(), "rank 1 (no consumer)") || !strings.Contains(err.Error(), "2 more were never sent") {
		t.Fatalf("Close with an unread rank: %v", err)
	}
	if err := <-errs; !errors.Is(err, ErrAborted) {
		t.Fatalf("rank 0 got %v, want ErrAborted", err)
	}
}

func TestEmptyStream(t *testing.T) {
	s, _ := listen(t, Config{Path: "tcp://127.0.0.1:0", World: 1})
	errs := make(chan error, 1)
	r, err := Dial(context.Background(), s.Address(), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() { errs <- s.Close() }()
	if r.Next() || r.Err() != nil {
		t.Fatalf("empty stream: a batch or an error (%v)", r.Err())
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	s, _ := listen(t, Config{Path: "tcp://127.0.0.1:0", World: 2, HandshakeTimeout: time.Second})
	ctx := context.Background()
	first, err := Dial(ctx, s.Address(), 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	for _, tc := range []struct {
		rank, world int
		want        string
	}{
		{0, 2, "rank 0 is already served"},
		{1, 3, "world size 3 does not match the producer's 2"},
		{2, 2, "rank 2 is out of range"},
	} {
		if _, err := Dial(ctx, s.Address(), tc.rank, tc.world); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("rank %d world %d: %v, want %q", tc.rank, tc.world, err, tc.want)
		}
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.Address(), "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET / HTTP/1.1\n"))
	answer, _ := readLine(conn)
	if !strings.HasPrefix(answer, "error handshake") {
		t.Errorf("answer to a bad handshake: %q", answer)
	}
	// A consumer that says nothing is refused when handshake_timeout ends, one that sends a
	// line too long at once.
	for _, tc := range []struct{ send, want string }{
		{"", "error no handshake line within handshake_timeout 1s"},
		{strings.Repeat("x", maxLineBytes+1), "error reading handshake: line longer than"},
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.Address(), "tcp://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte(tc.send))
		if answer, _ := readLine(conn); !strings.HasPrefix(answer, tc.want) {
			t.Errorf("sent %d bytes: answer %q, want %q", len(tc.send), answer, tc.want)
		}
	}
	if refused := s.Summary()["refused"].([]string); len(refused) != 6 {
		t.Errorf("summary lists %d refused connections, want 6: %v", len(refused), refused)
	}
}

func TestParseAddress(t *testing.T) {
	for _, bad := range []string{"/tmp/p.sock", "udp://1.2.3.4:5", "unix://", "tcp:127.0.0.1:1"} {
		if _, _, err := ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) accepted", bad)
		}
	}
	if n, w, err := ParseAddress("unix:///tmp/p.sock"); err != nil || n != "unix" || w != "/tmp/p.sock" {
		t.Errorf("unix:///tmp/p.sock -> %q %q %v", n, w, err)
	}
}

// The sink: block of a pipeline config decodes into Config.
func TestConfigFromYAML(t *testing.T) {
	src := "path: unix:///tmp/p.sock\nworld_size: 2\nqueue_bytes: 167772160\nclose_timeout: 30s\n"
	var cfg Config
	if err := yaml.UnmarshalWithOptions([]byte(src), &cfg, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	want := Config{Path: "unix:///tmp/p.sock", World: 2, QueueBytes: 160 << 20, CloseTimeout: 30 * time.Second}
	if cfg != want {
		t.Fatalf("decoded %+v, want %+v", cfg, want)
	}
}

// Each batch carries its place in the stream to its rank, as IPC message metadata.
func TestBatchesCarryTheirPositions(t *testing.T) {
	s, mem := listen(t, Config{Path: addresses(t)["unix"], World: 2})
	batchtest.CheckPositions(t, s, mem, small, 2, 3, 5, func(rank int) ([]map[string]string, error) {
		r, err := Dial(context.Background(), s.Address(), rank, 2)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		var mds []map[string]string
		for r.Next() {
			mds = append(mds, rankqueue.Metadata(r.RecordBatch()))
		}
		return mds, r.Err()
	})
}
