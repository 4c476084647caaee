package tarshard

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/pipeline"
)

type member struct {
	name string
	data string
}

func tarBytes(t testing.TB, members []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func account() *pipeline.Account {
	return pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 1 << 20, Decoded: 1, Views: 1, Batches: 1}).Encoded
}

// result is one call of Next, written compactly: "key:label:bytes" or "key!reason" or
// "shard!reason".
func readAll(t *testing.T, path string, opt Options) []string {
	t.Helper()
	if opt.Alloc == nil {
		opt.Alloc = account()
	}
	r := Open(path, 3, opt)
	defer r.Close()
	var out []string
	for i := 0; ; i++ {
		it, err := r.Next(context.Background())
		if err == io.EOF {
			break
		}
		if i > 100 {
			t.Fatal("reader does not end")
		}
		if se, ok := pipeline.AsSampleError(err); ok {
			if se.Meta.Shard != path {
				t.Errorf("sample error names shard %q, want %q", se.Meta.Shard, path)
			}
			out = append(out, se.Meta.Key+"!"+se.Reason)
			continue
		}
		if se, ok := pipeline.AsShardError(err); ok {
			out = append(out, "shard!"+se.Reason)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if it.Shard != path {
			t.Errorf("%s: shard %q, want %q", it.Key, it.Shard, path)
		}
		out = append(out, it.Key+":"+itoa(int64(it.Label))+":"+string(it.Encoded))
		it.Release()
	}
	if acct, ok := opt.Alloc.(*pipeline.Account); ok && acct.InUse() != 0 {
		t.Errorf("%d bytes still held after every item was released", acct.InUse())
	}
	return out
}

func itoa(v int64) string {
	if v < 0 {
		return "-" + itoa(-v)
	}
	if v < 10 {
		return string(rune('0' + v))
	}
	return itoa(v/10) + itoa(v%10)
}

func equal(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

var goodMembers = []member{
	{"000.jpg", "AAA"}, {"000.cls", "1"},
	{"./001.JPEG", "BB"}, {"./001.json", `{"label": 2}`},
	{"dir/002.png", "C"}, {"dir/002.json", `{"cls": 7}`}, {"dir/002.txt", "ignored"},
	{"003.cls", " 4\n"}, {"003.json", `{"label": 9}`}, {"003.Jpg", "D"},
}

func TestGoodShardPlainAndGzip(t *testing.T) {
	want := []string{"000:1:AAA", "001:2:BB", "dir/002:7:C", "003:4:D"}
	plain := tarBytes(t, goodMembers)
	equal(t, readAll(t, writeFile(t, "s.tar", plain), Options{}), want...)
	equal(t, readAll(t, writeFile(t, "s.tar.gz", gzipBytes(t, plain)), Options{}), want...)
}

func TestIndexAndMeta(t *testing.T) {
	path := writeFile(t, "s.tar", tarBytes(t, goodMembers))
	r := Open(path, 5, Options{Alloc: account()})
	defer r.Close()
	for pos := int64(0); ; pos++ {
		it, err := r.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if it.Index != 5<<32|pos {
			t.Fatalf("%s: index %#x, want %#x", it.Key, it.Index, 5<<32|pos)
		}
		it.Release()
	}
}

func TestBadSamples(t *testing.T) {
	members := []member{
		{"00.jpg", ""}, {"00.cls", "1"}, // empty image
		{"01.cls", "1"},                    // no image
		{"02.jpg", "x"},                    // no label
		{"03.jpg", "x"}, {"03.cls", "cat"}, // label not a number
		{"04.jpg", "x"}, {"04.json", `{"label": "1"`}, // broken json
		{"05.jpg", "x"}, {"05.cls", "-3"}, // negative
		{"06.jpg", strings.Repeat("z", 100)}, {"06.cls", "1"}, // over the member limit
		{"07.jpg", "ok"}, {"07.cls", "8"},
	}
	path := writeFile(t, "bad.tar", tarBytes(t, members))
	equal(t, readAll(t, path, Options{MaxMemberBytes: 99}),
		"00!empty_member", "01!no_image", "02!no_label", "03!bad_label", "04!bad_label",
		"05!bad_label", "06!too_large", "07:8:ok")
	// with optional labels, 02 gets label -1
	got := readAll(t, path, Options{MaxMemberBytes: 99, LabelsOptional: true})
	if got[2] != "02:-1:x" {
		t.Fatalf("optional label: got %q, want 02:-1:x", got[2])
	}
}

// countingAlloc counts the bytes asked for, to show that refused members are never read.
type countingAlloc struct {
	acct  *pipeline.Account
	asked int
}

func (c *countingAlloc) Alloc(ctx context.Context, it *pipeline.Item, n int) ([]byte, error) {
	c.asked += n
	return c.acct.Alloc(ctx, it, n)
}

func TestTooLargeIsNotRead(t *testing.T) {
	path := writeFile(t, "big.tar", tarBytes(t, []member{{"0.jpg", strings.Repeat("z", 5000)}, {"0.cls", "1"}}))
	alloc := &countingAlloc{acct: account()}
	equal(t, readAll(t, path, Options{Alloc: alloc, MaxMemberBytes: 4096}), "0!too_large")
	if alloc.asked != 0 {
		t.Fatalf("a refused member still allocated %d bytes", alloc.asked)
	}
}

func TestSkipLeavesImagesUnread(t *testing.T) {
	path := writeFile(t, "s.tar", tarBytes(t, goodMembers))
	alloc := &countingAlloc{acct: account()}
	skipOdd := func(index int64) bool { return index&1 == 1 }
	equal(t, readAll(t, path, Options{Alloc: alloc, Skip: skipOdd}), "000:1:AAA", "001:2:", "dir/002:7:C", "003:4:")
	if alloc.asked != 4 {
		t.Fatalf("allocated %d bytes, want 4 (only samples 000 and 002)", alloc.asked)
	}
}

func TestTruncatedShard(t *testing.T) {
	var members []member
	for i := 0; i < 5; i++ {
		members = append(members, member{"s" + itoa(int64(i)) + ".jpg", strings.Repeat("p", 700)}, member{"s" + itoa(int64(i)) + ".cls", itoa(int64(i))})
	}
	full := tarBytes(t, members)
	// Each sample takes 512+1024 (image) + 512+512 (label) bytes; cut inside sample 3's image.
	cut := full[:3*2560+512+300]
	want := []string{"s0:0:" + strings.Repeat("p", 700), "s1:1:" + strings.Repeat("p", 700), "s2:2:" + strings.Repeat("p", 700), "shard!truncated_shard"}
	equal(t, readAll(t, writeFile(t, "cut.tar", cut), Options{}), want...)
	equal(t, readAll(t, writeFile(t, "cut.tar.gz", gzipBytes(t, cut)), Options{}), want...)
	// Cut in the padding after sample 3's label, exactly after it, and between sample 4's
	// image and label: tar.Reader alone would take each for a clean end. The sample being read
	// when the cut shows is dropped: nothing says it was complete.
	s3 := "s3:3:" + strings.Repeat("p", 700)
	for at, wantHere := range map[int][]string{
		4*2560 - 100:  want,
		4 * 2560:      want,
		4*2560 + 1536: append(want[:3:3], s3, "shard!truncated_shard"),
	} {
		equal(t, readAll(t, writeFile(t, "cut-at.tar", full[:at]), Options{}), wantHere...)
	}
	// a gzip stream cut short is truncated too, whatever the tar inside
	gz := gzipBytes(t, full)
	got := readAll(t, writeFile(t, "cutgz.tar.gz", gz[:len(gz)/2]), Options{})
	if got[len(got)-1] != "shard!truncated_shard" {
		t.Fatalf("cut gzip stream: got %q, want it to end with a truncated_shard error", got)
	}
	// Skipping (resume) sees the same samples and the same error.
	skipAll := func(int64) bool { return true }
	equal(t, readAll(t, writeFile(t, "cut2.tar", cut), Options{Skip: skipAll}), "s0:0:", "s1:1:", "s2:2:", "shard!truncated_shard")
}

func TestMissingShard(t *testing.T) {
	path := filepath.Join(t.TempDir(), "train-000007.tar")
	r := Open(path, 7, Options{Alloc: account()})
	_, err := r.Next(context.Background())
	se, ok := pipeline.AsShardError(err)
	if !ok || se.Reason != ReasonMissing || se.Shard != path {
		t.Fatalf("missing shard: got %v, want a missing_shard error naming %s", err, path)
	}
	if _, err := r.Next(context.Background()); err != io.EOF {
		t.Fatalf("after a shard error Next must return io.EOF, got %v", err)
	}
}

func TestPathTraversalNamesAreOnlyKeys(t *testing.T) {
	dir := t.TempDir()
	work := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work)
	path := writeFile(t, "evil.tar", tarBytes(t, []member{{"../../x.jpg", "img"}, {"../../x.cls", "3"}, {"/abs/y.png", "i2"}, {"/abs/y.cls", "1"}}))
	equal(t, readAll(t, path, Options{}), "../../x:3:img", "/abs/y:1:i2")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "a" {
		t.Fatalf("reading the shard wrote files: %v", entries)
	}
}

func TestNotATar(t *testing.T) {
	path := writeFile(t, "junk.tar", bytes.Repeat([]byte("not a tar file "), 100))
	r := Open(path, 0, Options{Alloc: account()})
	_, err := r.Next(context.Background())
	if se, ok := pipeline.AsShardError(err); !ok || se.Reason != ReasonUnreadable {
		t.Fatalf("junk file: got %v, want unreadable_shard", err)
	}
}

func TestCancelled(t *testing.T) {
	path := writeFile(t, "s.tar", tarBytes(t, goodMembers))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Open(path, 0, Options{Alloc: account()})
	if _, err := r.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: got %v", err)
	}
}

func TestSplitName(t *testing.T) {
	for _, c := range [][3]string{
		{"000123.jpg", "000123", "jpg"},
		{"./a/b.c/000123.seg.PNG", "a/b.c/000123", "seg.png"},
		{"noext", "noext", ""},
	} {
		if k, e := SplitName(c[0]); k != c[1] || e != c[2] {
			t.Errorf("SplitName(%q) = %q, %q; want %q, %q", c[0], k, e, c[1], c[2])
		}
	}
}
