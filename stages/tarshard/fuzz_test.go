package tarshard

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pipeline/pipeline"
)

// knownReasons are every reason a reader may give.
var knownReasons = map[string]bool{
	pipeline.ReasonEmpty: true, pipeline.ReasonNoImage: true, pipeline.ReasonNoLabel: true,
	pipeline.ReasonBadLabel: true, pipeline.ReasonTooLarge: true,
	ReasonTruncated: true, ReasonUnreadable: true, ReasonMissing: true, ReasonStalled: true,
}

// fuzzRead reads every sample of the shard at path and writes each outcome as a line. It
// fails on an outcome a reader may not give.
func fuzzRead(t *testing.T, path string, opt Options) string {
	acct := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 64 << 20, Decoded: 1, Views: 1, Batches: 1}).Encoded
	opt.Alloc = acct
	r := Open(path, 1, opt)
	defer r.Close()
	var out strings.Builder
	for calls := 0; ; calls++ {
		if calls > 1<<16 {
			t.Fatal("the reader does not end")
		}
		it, err := r.Next(context.Background())
		if err == io.EOF {
			break
		}
		if se, ok := pipeline.AsSampleError(err); ok {
			if !knownReasons[se.Reason] || se.Meta.Shard != path {
				t.Fatalf("sample error with reason %q, shard %q: %v", se.Reason, se.Meta.Shard, err)
			}
			out.WriteString(se.Meta.Key + " ! " + se.Reason + "\n")
			continue
		}
		if se, ok := pipeline.AsShardError(err); ok {
			if !knownReasons[se.Reason] || se.Shard != path {
				t.Fatalf("shard error with reason %q, shard %q: %v", se.Reason, se.Shard, err)
			}
			out.WriteString("shard ! " + se.Reason + "\n")
			if _, err := r.Next(context.Background()); err != io.EOF {
				t.Fatalf("Next after a shard error: %v, want io.EOF", err)
			}
			break
		}
		if err != nil {
			t.Fatalf("neither a sample, a bad sample nor a bad shard: %v", err)
		}
		if int64(len(it.Encoded)) > opt.MaxMemberBytes || it.Label < -1 || it.Shard != path {
			t.Fatalf("sample %s: %d bytes (max %d), label %d, shard %q", it.Key, len(it.Encoded), opt.MaxMemberBytes, it.Label, it.Shard)
		}
		out.WriteString(it.Key + "\n")
		it.Release()
	}
	if acct.InUse() != 0 {
		t.Fatalf("%d bytes still held after every sample was released", acct.InUse())
	}
	return out.String()
}

// FuzzReader feeds arbitrary bytes to the shard reader as a plain or gzip tar: it must never
// panic or hang, must give only samples within max_member_bytes, classified bad samples and
// shard errors, and must release every byte. Reading with every image skipped (as exact resume
// replays a shard) through the read-timeout guard must give the same keys and outcomes. Seeds: testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	f.Add(tarBytes(f, goodMembers))
	f.Add(gzipBytes(f, tarBytes(f, goodMembers)))
	f.Add(tarBytes(f, []member{{"../../x.jpg", "img"}, {"../../x.cls", "3"}, {"/abs/y.png", ""}, {"y.cls", "-1"}}))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.tar")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		opt := Options{MaxMemberBytes: 1 << 16}
		full := fuzzRead(t, path, opt)
		// Skipping seeks over the images; the read guard buffers and seeks on its own.
		opt.Skip = func(int64) bool { return true }
		opt.ReadTimeout = time.Minute
		if skipped := fuzzRead(t, path, opt); skipped != full {
			t.Fatalf("reading with images skipped differs:\n%s\nreading them:\n%s", skipped, full)
		}
	})
}
