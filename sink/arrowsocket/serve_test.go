package arrowsocket

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/sink/arrowsocket/batchtest"
	"pipeline/sink/flight"
	"pipeline/sink/netsec"
	"pipeline/sink/netsec/netsectest"
)

// TestServeSynthetic is a producer for the Python client's checks, not a unit test: it is
// skipped unless BATCHTEST_SERVE names an address. Build it once and run it anywhere:
//
//	CGO_ENABLED=0 go test -c -o bin/arrowsocket.test ./sink/arrowsocket
//	BATCHTEST_SERVE=unix:///tmp/p.sock BATCHTEST_BATCHES=40 BATCHTEST_SHAPE=256x224x224 \
//	  BATCHTEST_WORLD=1 bin/arrowsocket.test -test.run '^TestServeSynthetic$' -test.v
//
// unix:// and tcp:// addresses use the socket sink, grpc:// ones the Flight sink. Batches
// follow batchtest's pixel formula, so the reader can check every byte it gets. All batches
// are built before the first is sent unless BATCHTEST_CYCLE=n asks to send n over and over.
//
// Security, for the Python client's tests of it: BATCHTEST_TLS_DIR=dir writes a CA and a
// server certificate there (netsectest; ca.pem last) and serves TLS with them;
// BATCHTEST_TOKEN_ENV=NAME requires the token in the environment variable NAME;
// BATCHTEST_SUMMARY=path writes the sink's summary there as JSON at the end.
func TestServeSynthetic(t *testing.T) {
	addr := os.Getenv("BATCHTEST_SERVE")
	if addr == "" {
		t.Skip("producer for python/tests: set BATCHTEST_SERVE=unix:///path, tcp://host:port or grpc://host:port to run it")
	}
	batches := envInt(t, "BATCHTEST_BATCHES", 20)
	world := envInt(t, "BATCHTEST_WORLD", 1)
	shape, err := batchtest.ParseShape(envOr("BATCHTEST_SHAPE", "256x224x224"))
	if err != nil {
		t.Fatal(err)
	}
	type server interface {
		Write(context.Context, arrow.RecordBatch) error
		Close() error
		Summary() map[string]any
	}
	security := netsec.Config{TokenEnv: os.Getenv("BATCHTEST_TOKEN_ENV")}
	if dir := os.Getenv("BATCHTEST_TLS_DIR"); dir != "" {
		files, err := netsectest.Write(dir)
		if err != nil {
			t.Fatal(err)
		}
		security.TLSCertFile, security.TLSKeyFile = files.Cert, files.Key
	}
	var s server
	if strings.HasPrefix(addr, "grpc://") || strings.HasPrefix(addr, "grpc+tls://") {
		s, err = flight.New(flight.Config{Path: addr, World: world, CloseTimeout: 5 * time.Minute, Security: security})
	} else {
		s, err = New(Config{Path: addr, World: world, CloseTimeout: 5 * time.Minute, Security: security})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("serving %d batches of %+v to %d rank(s) on %s", batches, shape, world, addr)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	// BATCHTEST_CYCLE=n builds n batches once and sends them over and over, so that a
	// throughput check measures the transport rather than how fast this test fills memory.
	var cycle []arrow.RecordBatch
	for b := 0; b < envInt(t, "BATCHTEST_CYCLE", batches+1) && b < batches; b++ {
		cycle = append(cycle, batchtest.Batch(mem, shape, b))
	}
	start := time.Now()
	for b := 0; b < batches; b++ {
		rec := cycle[b%len(cycle)]
		rec.Retain() // Write takes one reference
		if err := s.Write(context.Background(), rec); err != nil {
			s.Close()
			t.Fatal(err)
		}
	}
	for _, rec := range cycle {
		rec.Release()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
	summary, _ := json.Marshal(s.Summary())
	t.Logf("done in %s: %s", time.Since(start).Round(time.Millisecond), summary)
	if path := os.Getenv("BATCHTEST_SUMMARY"); path != "" {
		if err := os.WriteFile(path, summary, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(t *testing.T, name string, def int) int {
	n, err := strconv.Atoi(envOr(name, strconv.Itoa(def)))
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, os.Getenv(name))
	}
	return n
}
