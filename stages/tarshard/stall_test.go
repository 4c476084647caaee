package tarshard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pipeline/pipeline"
)

// stallingFile is a shard in memory whose positioned reads block: the reads numbered in
// stallOn (counting from 1) wait until the test ends, as a hung network filesystem does.
type stallingFile struct {
	*bytes.Reader
	stallOn map[int64]bool
	reads   atomic.Int64
	release chan struct{}
	once    sync.Once
}

func newStallingFile(t *testing.T, data []byte, stallOn ...int64) *stallingFile {
	f := &stallingFile{Reader: bytes.NewReader(data), stallOn: map[int64]bool{}, release: make(chan struct{})}
	for _, n := range stallOn {
		f.stallOn[n] = true
	}
	t.Cleanup(f.unblock) // the abandoned reads end with the test
	return f
}

func (f *stallingFile) ReadAt(p []byte, off int64) (int, error) {
	if f.stallOn[f.reads.Add(1)] {
		<-f.release
	}
	return f.Reader.ReadAt(p, off)
}

func (f *stallingFile) unblock()     { f.once.Do(func() { close(f.release) }) }
func (f *stallingFile) Close() error { return nil }

func (f *stallingFile) open(string) (shardFile, error) { return f, nil }

func TestStallGuardRetriesThenSucceeds(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 20000) // 200 KB: four reads of 64 KiB
	f := newStallingFile(t, data, 2)                  // the second read hangs; its retry answers
	g := &stallGuard{f: f, timeout: 20 * time.Millisecond, retries: 1, ctx: context.Background()}
	got, err := io.ReadAll(g)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, err %v; want the whole file", len(got), err)
	}
	if n := f.reads.Load(); n < 5 {
		t.Fatalf("%d reads: the stalled read was not retried", n)
	}
}

func TestStallGuardGivesUpAfterRetries(t *testing.T) {
	f := newStallingFile(t, []byte("data"), 1, 2, 3)
	g := &stallGuard{f: f, timeout: 10 * time.Millisecond, retries: 2, ctx: context.Background()}
	start := time.Now()
	n, err := g.Read(make([]byte, 4))
	if n != 0 || !errors.Is(err, ErrStalled) {
		t.Fatalf("got %d bytes, %v; want ErrStalled", n, err)
	}
	if reads := f.reads.Load(); reads != 3 {
		t.Fatalf("%d attempts, want 1 + 2 retries", reads)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("gave up after %v, before 3 timeouts of 10ms", d)
	}
}

// A late answer from an attempt that timed out is taken if it comes first.
func TestStallGuardTakesALateAnswer(t *testing.T) {
	f := newStallingFile(t, []byte("data"), 1, 2)
	g := &stallGuard{f: f, timeout: 20 * time.Millisecond, retries: 3, ctx: context.Background()}
	time.AfterFunc(30*time.Millisecond, f.unblock) // the first attempt answers during the retry
	buf := make([]byte, 4)
	if n, err := g.Read(buf); n != 4 || err != nil || string(buf) != "data" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}

func TestStallGuardStopsOnCancel(t *testing.T) {
	f := newStallingFile(t, []byte("data"), 1)
	ctx, cancel := context.WithCancel(context.Background())
	g := &stallGuard{f: f, timeout: time.Hour, retries: 0, ctx: ctx}
	time.AfterFunc(10*time.Millisecond, cancel)
	if _, err := g.Read(make([]byte, 4)); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// A shard whose file stops answering in the middle fails as stalled_shard, naming the shard;
// the samples read before the stall are kept.
func TestStalledShard(t *testing.T) {
	var members []member
	for _, k := range []string{"s0", "s1", "s2", "s3"} {
		members = append(members, member{k + ".jpg", string(bytes.Repeat([]byte(k), 20000))}, member{k + ".cls", "1"})
	}
	data := tarBytes(t, members)
	// Count the reads a healthy pass makes, then stall every read from the middle on.
	healthy := newStallingFile(t, data)
	r := Open("mem.tar", 0, Options{Alloc: account(), ReadTimeout: time.Second, openFile: healthy.open})
	for {
		it, err := r.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		it.Release()
	}
	// 160 KB in reads of 64 KiB: the first read holds the first sample.
	total := healthy.reads.Load()
	if total < 3 {
		t.Fatalf("a healthy pass made %d reads; the test needs 3 or more", total)
	}
	var stalls []int64
	for n := int64(2); n <= total+10; n++ {
		stalls = append(stalls, n)
	}
	f := newStallingFile(t, data, stalls...)
	opt := Options{Alloc: account(), ReadTimeout: 5 * time.Millisecond, ReadRetries: 1, openFile: f.open}
	r = Open("mem.tar", 0, opt)
	var good int
	for {
		it, err := r.Next(context.Background())
		if err == io.EOF {
			t.Fatalf("the shard ended without an error after %d samples", good)
		}
		if se, ok := pipeline.AsShardError(err); ok {
			if se.Reason != ReasonStalled || se.Shard != "mem.tar" || !errors.Is(err, ErrStalled) {
				t.Fatalf("got %v, want a stalled_shard error naming mem.tar", err)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		good++
		it.Release()
	}
	if good == 0 || good == 4 {
		t.Fatalf("%d samples before the stall, want some but not all", good)
	}
	if _, err := r.Next(context.Background()); err != io.EOF {
		t.Fatalf("after a shard error Next must return io.EOF, got %v", err)
	}
	if acct := opt.Alloc.(*pipeline.Account); acct.InUse() != 0 {
		t.Fatalf("%d bytes still held", acct.InUse())
	}
}

// With a read timeout, plain and gzip shards read the same as without.
func TestGuardedReadsMatchPlainReads(t *testing.T) {
	plain := tarBytes(t, goodMembers)
	for name, data := range map[string][]byte{"s.tar": plain, "s.tar.gz": gzipBytes(t, plain)} {
		path := writeFile(t, name, data)
		want := readAll(t, path, Options{})
		got := readAll(t, path, Options{ReadTimeout: time.Minute})
		equal(t, got, want...)
	}
}

// BenchmarkReadTimeout is the cost of bounding every read: the bundled example shards read
// with and without source.read_timeout.
func BenchmarkReadTimeout(b *testing.B) {
	paths, _ := filepath.Glob("../../testdata/imagenet-like/train-*.tar")
	if len(paths) == 0 {
		b.Skip("no testdata/imagenet-like shards")
	}
	for _, timeout := range []time.Duration{0, time.Minute} {
		b.Run(fmt.Sprintf("read_timeout=%v", timeout), func(b *testing.B) {
			acct := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 64 << 20, Decoded: 1, Views: 1, Batches: 1}).Encoded
			var bytes int64
			for b.Loop() {
				for _, p := range paths {
					r := Open(p, 0, Options{Alloc: acct, ReadTimeout: timeout, ReadRetries: 1})
					for {
						it, err := r.Next(context.Background())
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						bytes += int64(len(it.Encoded))
						it.Release()
					}
					r.Close()
				}
			}
			b.SetBytes(bytes / int64(b.N))
		})
	}
}
