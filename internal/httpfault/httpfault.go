// Package httpfault is an in-process web server for tests of remote reads: it serves named
// objects with Range, ETag and If-Match (net/http's ServeContent) and injects the faults a
// network and a server cause: connections cut mid-answer, 5xx answers, stalled answers,
// objects replaced between requests, and answers that always end early.
package httpfault

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Faults are what one object's GET answers suffer, each keyed by the number of the GET of that
// object (0 is the first).
type Faults struct {
	CutAfter   map[int]int           // end the connection after this many body bytes
	Status     map[int]int           // answer this status instead
	Stall      map[int]time.Duration // stop after 1000 body bytes for this long, then end
	ChangeOn   map[int]bool          // replace the object (new bytes, new ETag) before answering
	TruncateAt int                   // > 0: every answer ends at this object offset
}

// Server serves Objects at /<name>.
type Server struct {
	URL string

	mu       sync.Mutex
	original map[string][]byte // as given to Start; SetFaults puts an object back to it
	objects  map[string][]byte
	version  map[string]int
	gets     map[string]int
	faults   map[string]*Faults
}

// Start serves objects until the test ends.
func Start(t testing.TB, objects map[string][]byte) *Server {
	s := &Server{original: map[string][]byte{}, objects: map[string][]byte{}, version: map[string]int{}, gets: map[string]int{}, faults: map[string]*Faults{}}
	for name, data := range objects {
		s.original[name], s.objects[name] = data, data
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// SetFaults sets the faults of an object's GETs from now on; their numbers count from here,
// and an object that ChangeOn replaced is put back as it was given to Start.
func (s *Server) SetFaults(name string, f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[name] = &f
	s.gets[name] = 0
	if data, ok := s.original[name]; ok {
		s.objects[name] = data
	}
}

// Gets is the number of GETs of name so far.
func (s *Server) Gets(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[name]
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	s.mu.Lock()
	var f Faults
	if p := s.faults[name]; p != nil {
		f = *p
	}
	n := -1
	if r.Method == http.MethodGet {
		n = s.gets[name]
		s.gets[name]++
		if f.ChangeOn[n] {
			s.objects[name] = append([]byte("changed "), s.original[name]...)
			s.version[name]++
		}
	}
	data, ok := s.objects[name]
	etag := fmt.Sprintf(`"%s-v%d"`, name, s.version[name])
	s.mu.Unlock()
	if code := f.Status[n]; code != 0 {
		http.Error(w, "injected", code)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", etag)
	fw := &faultWriter{ResponseWriter: w, cut: f.CutAfter[n], stall: f.Stall[n], ctx: r.Context(), truncLeft: -1}
	if f.TruncateAt > 0 {
		var start int
		fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-", &start)
		fw.truncLeft = max(0, f.TruncateAt-start)
	}
	http.ServeContent(fw, r, name, time.Time{}, bytes.NewReader(data))
}

// faultWriter ends (cut, truncLeft) or pauses (stall) an answer's body.
type faultWriter struct {
	http.ResponseWriter
	written   int
	cut       int
	stall     time.Duration
	ctx       context.Context
	truncLeft int // bytes still allowed before the answer ends; -1: no limit
}

func (f *faultWriter) Write(p []byte) (int, error) {
	if f.truncLeft >= 0 && len(p) > f.truncLeft {
		f.end(p[:f.truncLeft])
	}
	if f.cut > 0 && f.written+len(p) > f.cut {
		f.end(p[:f.cut-f.written])
	}
	if f.stall > 0 && f.written+len(p) > 1000 {
		f.ResponseWriter.Write(p[:1000-f.written])
		f.ResponseWriter.(http.Flusher).Flush()
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
	return f.ResponseWriter.Write(p)
}

// end writes the last bytes of the answer and drops the connection, the body short of what
// its Content-Length promised.
func (f *faultWriter) end(last []byte) {
	f.ResponseWriter.Write(last)
	f.ResponseWriter.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

var _ io.Writer = (*faultWriter)(nil)
