package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"pipeline/internal/httpfault"
	"pipeline/pipeline/config"
	"pipeline/stages/objstore"
)

// servedShards writes 4 shards of 30 samples and serves them over HTTP; it returns the local
// and the remote pattern.
func servedShards(t *testing.T) (local, remote string, srv *httpfault.Server) {
	t.Helper()
	dir := t.TempDir()
	local = writeShards(t, dir, 4, 30, nil)
	objects := map[string][]byte{}
	for i := range 4 {
		name := fmt.Sprintf("train-%03d.tar", i)
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		objects[name] = data
	}
	srv = httpfault.Start(t, objects)
	return local, srv.URL + "/train-{000..003}.tar", srv
}

func remoteTestConfig(shards string) Config {
	return Config{
		Shards: Patterns{shards}, Readers: 2, ShuffleBuffer: 8, Rank: intp(0), WorldSize: intp(1),
		Remote: objstore.Config{
			Retries: intp(3), RetryBackoff: ptrTo(config.Duration(time.Millisecond)),
			ReadTimeout: ptrTo(config.Duration(200 * time.Millisecond)),
			Prefetch:    32 << 10, ChunkBytes: 16 << 10,
		},
	}
}

// TestRemoteShardsLikeLocal: over HTTP the stream is the local one, sample for sample, on
// every rank, and a resume yields the local run's tail.
func TestRemoteShardsLikeLocal(t *testing.T) {
	local, remote, _ := servedShards(t)
	opt := Options{Seed: 3, Epochs: 2}
	for _, rank := range []int{0, 1} {
		lc, rc := remoteTestConfig(local), remoteTestConfig(remote)
		lc.Rank, lc.WorldSize, rc.Rank, rc.WorldSize = intp(rank), intp(2), intp(rank), intp(2)
		want, got := run(t, lc, opt), run(t, rc, opt)
		if len(want) != 2*60 || !slices.Equal(got, want) {
			t.Fatalf("rank %d: remote stream differs from the local one:\n got %q\nwant %q", rank, got, want)
		}
	}
	full := run(t, remoteTestConfig(local), opt)
	for _, k := range []int{1, 37, 130} {
		o := opt
		o.Start = Position{Epoch: k / 120, Offset: int64(k % 120)}
		if got, want := run(t, remoteTestConfig(remote), o), tailAfter(full, k); !slices.Equal(got, want) {
			t.Fatalf("resume at %d over HTTP: got %q\nwant %q", k, got, want)
		}
	}
}

// TestRemoteShardFaults serves one shard with each fault: the faults a retry mends leave the
// stream as it is locally; the others end that shard with a shard error of their reason, every
// sample delivered before it and every sample of the other shards delivered once.
func TestRemoteShardFaults(t *testing.T) {
	local, remote, srv := servedShards(t)
	opt := Options{Seed: 3, Epochs: 1}
	want := run(t, remoteTestConfig(local), opt)
	for _, tc := range []struct {
		name   string
		faults httpfault.Faults
		reason string // "": mended
	}{
		{"cut", httpfault.Faults{CutAfter: map[int]int{0: 5000, 1: 20000}}, ""},
		{"5xx", httpfault.Faults{Status: map[int]int{0: 503, 1: 502}}, ""},
		{"slow", httpfault.Faults{Stall: map[int]time.Duration{0: 5 * time.Second}}, ""},
		{"changed", httpfault.Faults{CutAfter: map[int]int{0: 20000}, ChangeOn: map[int]bool{1: true}}, objstore.ReasonChanged},
		{"truncated", httpfault.Faults{TruncateAt: 25000}, "truncated_shard"},
		{"unreachable", httpfault.Faults{Status: map[int]int{0: 503, 1: 503, 2: 503, 3: 503}}, objstore.ReasonUnreachable},
		{"missing", httpfault.Faults{Status: map[int]int{-1: 404}}, "missing_shard"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetFaults("train-001.tar", tc.faults)
			defer srv.SetFaults("train-001.tar", httpfault.Faults{})
			got := run(t, remoteTestConfig(remote), opt)
			if tc.reason == "" {
				if n := srv.Gets("train-001.tar"); n < 2 {
					t.Fatalf("%d GETs of the faulty shard: the fault was not met", n)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("got %q\nwant %q", got, want)
				}
				return
			}
			shardErr := "shard!" + tc.reason + ":train-001.tar"
			if n := count(got, shardErr); n != 1 {
				t.Fatalf("%d %s in %q", n, shardErr, got)
			}
			seen := map[string]bool{}
			for _, o := range samplesOnly(got) {
				if seen[o] || !slices.Contains(want, o) {
					t.Fatalf("%s delivered twice or not a sample of the local run", o)
				}
				seen[o] = true
			}
			for _, o := range want {
				if !strings.Contains(o, ":s1_") && !seen[o] {
					t.Fatalf("%s of a healthy shard is missing", o)
				}
			}
		})
	}
}

func count(list []string, s string) int {
	n := 0
	for _, o := range list {
		if o == s {
			n++
		}
	}
	return n
}

// TestNextRemoteShardOpensAhead: while a reader is on its first shard, the next one is being
// fetched; closing the source early closes it and stops its streamer.
func TestNextRemoteShardOpensAhead(t *testing.T) {
	_, remote, srv := servedShards(t)
	cfg := remoteTestConfig(remote)
	cfg.Readers, cfg.ShuffleShards = 1, new(bool)
	acct := newAccount(1 << 20)
	src, err := Open(cfg, Options{Account: acct})
	if err != nil {
		t.Fatal(err)
	}
	it, err := src.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	it.Release()
	for deadline := time.Now().Add(10 * time.Second); srv.Gets("train-001.tar") == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the next shard was not requested while the first was read")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if srv.Gets("train-002.tar") != 0 {
		t.Error("a shard two ahead was requested")
	}
	src.Close()
	if acct.InUse() != 0 {
		t.Errorf("%d bytes held after Close", acct.InUse())
	}
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(5 * time.Second); ; {
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "objstore.startStreamer") && !strings.Contains(stacks, "shardPrefetcher") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("streamer or prefetch goroutines left after Close:\n%s", stacks)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
