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
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pipeline/internal/httpfault"
	"pipeline/pipeline/config"
)

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

func openHTTP(t *testing.T, srv *httpfault.Server, name string) (File, error) {
	t.Helper()
	s, err := NewStore(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	return s.Open(context.Background(), srv.URL+"/"+name)
}

func TestHTTPStreamsWholeObject(t *testing.T) {
	data := randomBytes(300_000, 1)
	srv := httpfault.Start(t, map[string][]byte{"a.tar": data})
	o, err := openHTTP(t, srv, "a.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, err %v; want the %d bytes of the object", len(got), err, len(data))
	}
	if srv.Gets("a.tar") != 1 {
		t.Errorf("a sequential read sent %d GETs, want 1", srv.Gets("a.tar"))
	}
}

func TestHTTPSeeksAndReadAt(t *testing.T) {
	data := randomBytes(500_000, 2)
	srv := httpfault.Start(t, map[string][]byte{"a.tar": data})
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
	if srv.Gets("a.tar") > 4 {
		t.Errorf("%d GETs for 2 far jumps, the near skip should read on", srv.Gets("a.tar"))
	}
}

func TestHTTPMissingIsNotExist(t *testing.T) {
	srv := httpfault.Start(t, map[string][]byte{})
	_, err := openHTTP(t, srv, "nope.tar")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err %v, want os.ErrNotExist", err)
	}
}

// readFault opens the object, sets its faults after the open and reads it all.
func readFault(t *testing.T, data []byte, faults httpfault.Faults) ([]byte, int, error) {
	t.Helper()
	srv := httpfault.Start(t, map[string][]byte{"a.tar": data})
	o, err := openHTTP(t, srv, "a.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	srv.SetFaults("a.tar", faults)
	got, err := io.ReadAll(o)
	return got, srv.Gets("a.tar"), err
}

func TestFaultCutsResume(t *testing.T) {
	data := randomBytes(400_000, 3)
	got, gets, err := readFault(t, data, httpfault.Faults{CutAfter: map[int]int{0: 50_000, 1: 70_000, 2: 1}})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after 3 cuts: err %v, %d bytes of %d, equal %v", err, len(got), len(data), bytes.Equal(got, data))
	}
	if gets != 4 {
		t.Errorf("%d GETs, want 4 (the first and one resume per cut)", gets)
	}
}

func TestFault5xxRetriedThenUnreachable(t *testing.T) {
	data := randomBytes(100_000, 4)
	got, _, err := readFault(t, data, httpfault.Faults{Status: map[int]int{0: 503, 1: 500}})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after two 5xx: err %v, equal %v", err, bytes.Equal(got, data))
	}
	_, gets, err := readFault(t, data, httpfault.Faults{Status: map[int]int{0: 503, 1: 503, 2: 503, 3: 503, 4: 503}})
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
	got, gets, err := readFault(t, data, httpfault.Faults{Stall: map[int]time.Duration{0: 10 * time.Second}})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after a stall: err %v, equal %v", err, bytes.Equal(got, data))
	}
	if gets != 2 || time.Since(start) > 5*time.Second {
		t.Errorf("%d GETs in %v: the stalled answer should be cut after read_timeout and resumed once", gets, time.Since(start))
	}
}

func TestFaultChangedObjectIsAnError(t *testing.T) {
	data := randomBytes(200_000, 6)
	got, _, err := readFault(t, data, httpfault.Faults{CutAfter: map[int]int{0: 30_000}, ChangeOn: map[int]bool{1: true}})
	if !errors.Is(err, ErrChanged) || Reason(err) != ReasonChanged {
		t.Fatalf("err %v, want ErrChanged", err)
	}
	if !bytes.Equal(got, data[:len(got)]) {
		t.Fatal("bytes of the new version were delivered")
	}
}

func TestFaultTruncatedObject(t *testing.T) {
	data := randomBytes(200_000, 7)
	got, gets, err := readFault(t, data, httpfault.Faults{TruncateAt: 120_000})
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

// TestHTTPServerWithoutRanges reads, and resumes after a cut, from a server that answers every
// request with the whole file.
func TestHTTPServerWithoutRanges(t *testing.T) {
	data := randomBytes(200_000, 9)
	cuts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		if r.Method == http.MethodHead {
			return
		}
		if cuts == 0 {
			cuts++
			w.Write(data[:70_000])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Write(data)
	}))
	defer srv.Close()
	s, err := NewStore(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(context.Background(), srv.URL+"/a.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("err %v, equal %v", err, bytes.Equal(got, data))
	}
}

// TestEndOfObjectIsNoCut: with no retry allowed, whole objects of every size still read
// through, so the answer's end at the object's end is never taken for a cut.
func TestEndOfObjectIsNoCut(t *testing.T) {
	objects := map[string][]byte{}
	for _, n := range []int{1, 16 << 10, 16<<10 + 1, 188_928, 300_000} {
		objects[fmt.Sprint(n)] = randomBytes(n, uint64(n))
	}
	dir := t.TempDir()
	for name, data := range objects {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir))) // sendfile: whole answers at once
	defer srv.Close()
	cfg := testConfig()
	cfg.Retries = ptrTo(0)
	for _, chunk := range []config.ByteSize{16 << 10, 64 << 10, 1 << 20} {
		cfg.ChunkBytes, cfg.Prefetch = chunk, 4*chunk
		readAllOf(t, cfg, srv, objects)
	}
}

func readAllOf(t *testing.T, cfg Config, srv *httptest.Server, objects map[string][]byte) {
	t.Helper()
	s, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range objects {
		o, err := s.Open(context.Background(), srv.URL+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(o)
		o.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s bytes: err %v, equal %v", name, err, bytes.Equal(got, data))
		}
	}
}
