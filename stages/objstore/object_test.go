package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"pipeline/pipeline/config"
)

// fakeServer serves named objects over HTTP with Range, ETag and If-Match (net/http's
// ServeContent), and injects faults into its answers.
type fakeServer struct {
	mu      sync.Mutex
	objects map[string][]byte
	version map[string]int
	gets    int // GET requests so far

	// Faults, each applied to the GET with that number (0 is the first):
	cutAfter   map[int]int           // end the connection after this many body bytes
	status     map[int]int           // answer this status instead
	stall      map[int]time.Duration // stop after 1000 bytes for this long
	changeOnce map[int]bool          // replace the object before answering
	truncateAt int                   // > 0: every answer ends after this object offset
}

func newFakeServer(t *testing.T, objects map[string][]byte) (*fakeServer, *httptest.Server) {
	f := &fakeServer{objects: objects, version: map[string]int{},
		cutAfter: map[int]int{}, status: map[int]int{}, stall: map[int]time.Duration{}, changeOnce: map[int]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	f.mu.Lock()
	n := -1
	if r.Method == http.MethodGet {
		n = f.gets
		f.gets++
		if f.changeOnce[n] {
			f.objects[name] = append([]byte("changed "), f.objects[name]...)
			f.version[name]++
		}
	}
	data, ok := f.objects[name]
	etag := fmt.Sprintf(`"%s-v%d"`, name, f.version[name])
	status, cut, stall, trunc := f.status[n], f.cutAfter[n], f.stall[n], f.truncateAt
	f.mu.Unlock()
	if status != 0 {
		http.Error(w, "injected", status)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", etag)
	var out io.Writer = w
	if cut > 0 || stall > 0 || trunc > 0 {
		out = &faultWriter{w: w, cut: cut, stall: stall, ctx: r.Context(), truncLeft: -1}
		if trunc > 0 {
			start := rangeStart(r)
			out.(*faultWriter).truncLeft = max(0, trunc-start)
		}
	}
	http.ServeContent(writerWith{w, out}, r, name, time.Time{}, bytes.NewReader(data))
}

func rangeStart(r *http.Request) int {
	var start int
	fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-", &start)
	return start
}

// writerWith is a ResponseWriter whose body goes to out.
type writerWith struct {
	http.ResponseWriter
	out io.Writer
}

func (w writerWith) Write(p []byte) (int, error) { return w.out.Write(p) }

// faultWriter ends (cut, truncLeft) or pauses (stall) an answer's body.
type faultWriter struct {
	w         http.ResponseWriter
	written   int
	cut       int
	stall     time.Duration
	ctx       context.Context
	truncLeft int // bytes still allowed before the answer ends; -1: no limit
}

func (f *faultWriter) Write(p []byte) (int, error) {
	if f.truncLeft >= 0 && len(p) > f.truncLeft {
		f.w.Write(p[:f.truncLeft])
		panic(http.ErrAbortHandler) // ends the connection with the body short
	}
	if f.cut > 0 && f.written+len(p) > f.cut {
		f.w.Write(p[:f.cut-f.written])
		f.w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	if f.stall > 0 && f.written+len(p) > 1000 {
		f.w.Write(p[:1000-f.written])
		f.w.(http.Flusher).Flush()
		select {
		case <-time.After(f.stall):
		case <-f.ctx.Done():
		}
		panic(http.ErrAbortHandler)
	}
	f.written += len(p)
	if f.truncLeft >= 0 {
		f.truncLeft -= len(p)
	}
	return f.w.Write(p)
}

func testConfig() Config {
	c, err := Config{
		Retries: ptrTo(3), RetryBackoff: ptrTo(config.Duration(time.Millisecond)),
		ReadTimeout: ptrTo(config.Duration(200 * time.Millisecond)),
		Prefetch:    64 << 10, ChunkBytes: 16 << 10,
	}.WithDefaults()
	if err != nil {
		panic(err)
	}
	return c
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func openHTTP(t *testing.T, srv *httptest.Server, name string) (File, error) {
	t.Helper()
	s, err := NewStore(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	return s.Open(context.Background(), srv.URL+"/"+name)
}

func TestHTTPStreamsWholeObject(t *testing.T) {
	data := randomBytes(300_000, 1)
	f, srv := newFakeServer(t, map[string][]byte{"a.tar": data})
	o, err := openHTTP(t, srv, "a.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, err %v; want the %d bytes of the object", len(got), err, len(data))
	}
	if f.gets != 1 {
		t.Errorf("a sequential read sent %d GETs, want 1", f.gets)
	}
}

func TestHTTPSeeksAndReadAt(t *testing.T) {
	data := randomBytes(500_000, 2)
	f, srv := newFakeServer(t, map[string][]byte{"a.tar": data})
	o, err := openHTTP(t, srv, "a.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	buf := make([]byte, 2)
	if _, err := io.ReadFull(o, buf); err != nil {
		t.Fatal(err)
	}
	// Back to the start (tarshard does this after sniffing gzip), a near skip forward, a
	// far jump forward and one back.
	for _, off := range []int64{0, 40_000, 400_000, 1000} {
		if _, err := o.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, 5000)
		if _, err := io.ReadFull(o, p); err != nil || !bytes.Equal(p, data[off:off+5000]) {
			t.Fatalf("at %d: err %v, bytes differ", off, err)
		}
	}
	p := make([]byte, 100)
	n, err := o.ReadAt(p, int64(len(data))-50)
	if n != 50 || err != io.EOF || !bytes.Equal(p[:50], data[len(data)-50:]) {
		t.Fatalf("ReadAt over the end: %d, %v", n, err)
	}
	if f.gets > 4 {
		t.Errorf("%d GETs for 2 far jumps, the near skip should read on", f.gets)
	}
}

func TestHTTPMissingIsNotExist(t *testing.T) {
	_, srv := newFakeServer(t, map[string][]byte{})
	_, err := openHTTP(t, srv, "nope.tar")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err %v, want os.ErrNotExist", err)
	}
}

// readFault opens the object, applies setup to the server after the open and reads it all.
func readFault(t *testing.T, data []byte, setup func(f *fakeServer)) ([]byte, int, error) {
	t.Helper()
	f, srv := newFakeServer(t, map[string][]byte{"a.tar": data})
	o, err := openHTTP(t, srv, "a.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	f.mu.Lock()
	setup(f)
	f.mu.Unlock()
	got, err := io.ReadAll(o)
	return got, f.gets, err
}

func TestFaultCutsResume(t *testing.T) {
	data := randomBytes(400_000, 3)
	got, gets, err := readFault(t, data, func(f *fakeServer) {
		f.cutAfter[0], f.cutAfter[1], f.cutAfter[2] = 50_000, 70_000, 1
	})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after 3 cuts: err %v, %d bytes of %d, equal %v", err, len(got), len(data), bytes.Equal(got, data))
	}
	if gets != 4 {
		t.Errorf("%d GETs, want 4 (the first and one resume per cut)", gets)
	}
}

func TestFault5xxRetriedThenUnreachable(t *testing.T) {
	data := randomBytes(100_000, 4)
	got, _, err := readFault(t, data, func(f *fakeServer) { f.status[0], f.status[1] = 503, 500 })
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after two 5xx: err %v, equal %v", err, bytes.Equal(got, data))
	}
	_, gets, err := readFault(t, data, func(f *fakeServer) {
		for i := range 10 {
			f.status[i] = 503
		}
	})
	if !errors.Is(err, ErrUnreachable) || Reason(err) != ReasonUnreachable {
		t.Fatalf("after only 5xx: err %v, want ErrUnreachable", err)
	}
	if gets != 4 {
		t.Errorf("%d GETs, want 4 (retries 3)", gets)
	}
}

func TestFaultStallResumes(t *testing.T) {
	data := randomBytes(100_000, 5)
	start := time.Now()
	got, gets, err := readFault(t, data, func(f *fakeServer) { f.stall[0] = 10 * time.Second })
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after a stall: err %v, equal %v", err, bytes.Equal(got, data))
	}
	if gets != 2 || time.Since(start) > 5*time.Second {
		t.Errorf("%d GETs in %v: the stalled answer should be cut after read_timeout and resumed once", gets, time.Since(start))
	}
}

func TestFaultChangedObjectIsAnError(t *testing.T) {
	data := randomBytes(200_000, 6)
	got, _, err := readFault(t, data, func(f *fakeServer) { f.cutAfter[0] = 30_000; f.changeOnce[1] = true })
	if !errors.Is(err, ErrChanged) || Reason(err) != ReasonChanged {
		t.Fatalf("err %v, want ErrChanged", err)
	}
	if !bytes.Equal(got, data[:len(got)]) {
		t.Fatal("bytes of the new version were delivered")
	}
}

func TestFaultTruncatedObject(t *testing.T) {
	data := randomBytes(200_000, 7)
	got, gets, err := readFault(t, data, func(f *fakeServer) { f.truncateAt = 120_000 })
	if !errors.Is(err, io.ErrUnexpectedEOF) || Reason(err) != "" {
		t.Fatalf("err %v, want io.ErrUnexpectedEOF (a truncated shard)", err)
	}
	if len(got) != 120_000 || !bytes.Equal(got, data[:120_000]) || gets != 4 {
		t.Fatalf("got %d bytes in %d GETs, want the 120000 served, in 4 GETs", len(got), gets)
	}
}

func TestPipeStreamsAndReportsExit(t *testing.T) {
	s, err := NewStore(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := randomBytes(250_000, 8)
	if err := os.WriteFile(dir+"/a.bin", data, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(context.Background(), "pipe:cat "+dir+"/a.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(o)
	o.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("pipe: err %v, equal %v", err, bytes.Equal(got, data))
	}
	o, err = s.Open(context.Background(), "pipe:head -c 1000 "+dir+"/a.bin; echo boom >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	got, err = io.ReadAll(o)
	if err == nil || !strings.Contains(err.Error(), "boom") || len(got) != 1000 {
		t.Fatalf("failing command: %d bytes, err %v; want 1000 and the exit with its stderr", len(got), err)
	}
}
