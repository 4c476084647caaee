package shardwrite

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"pipeline/internal/idx"
	"pipeline/pipeline"
	"pipeline/stages/tarshard"
)

// readShards reads every sample of the shards with the pipeline's own reader.
func readShards(t *testing.T, paths []string) []*pipeline.Item {
	t.Helper()
	acct := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 1 << 30, Decoded: 1, Views: 1, Batches: 1}).Encoded
	var items []*pipeline.Item
	for n, p := range paths {
		r := tarshard.Open(p, n, tarshard.Options{Alloc: acct})
		for {
			it, err := r.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			items = append(items, it)
		}
		r.Close()
	}
	return items
}

func encodeJPEG(t *testing.T, w, h int, shade uint8) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{shade, uint8(x * 255 / w), uint8(y * 255 / h), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// makeFolder writes classes x per JPEGs (a PNG for the last one) and returns the root and the
// bytes of each file by "<class>/<file>".
func makeFolder(t *testing.T, classes, per int) (string, map[string][]byte) {
	root := t.TempDir()
	files := map[string][]byte{}
	for c := 0; c < classes; c++ {
		for i := 0; i < per; i++ {
			name := fmt.Sprintf("n%02d/img%d.JPEG", c, i)
			data := encodeJPEG(t, 60+c, 40+i, uint8(c*40+i))
			if c == classes-1 && i == per-1 {
				var buf bytes.Buffer
				png.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)))
				name, data = fmt.Sprintf("n%02d/img%d.png", c, i), buf.Bytes()
			}
			files[name] = data
			p := filepath.Join(root, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root, files
}

func shardMain(t *testing.T, args ...string) []string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := Main(args, &stdout, &stderr); err != nil {
		t.Fatalf("Main(%q): %v\n%s", args, err, stderr.String())
	}
	var paths []string
	for _, line := range strings.Split(stdout.String(), "\n") {
		if p, ok := strings.CutPrefix(line, "wrote "); ok {
			paths = append(paths, p[:strings.LastIndex(p, ":")])
		}
	}
	return paths
}

func TestFolderToShards(t *testing.T) {
	root, files := makeFolder(t, 3, 3)
	out := t.TempDir()
	paths := shardMain(t, "--from", root, "--out", filepath.Join(out, "a", "train-%06d.tar"), "--per-shard", "4")
	if want := []string{"train-000000.tar", "train-000001.tar", "train-000002.tar"}; len(paths) != 3 || filepath.Base(paths[2]) != want[2] {
		t.Fatalf("wrote %q, want %q", paths, want)
	}
	items := readShards(t, paths)
	if len(items) != 9 {
		t.Fatalf("%d samples read back, want 9", len(items))
	}
	// keys are positions in the sorted listing: n00/img0..2 = 0..2, n01 = 3..5, n02 = 6..8
	var keys []string
	for _, it := range items {
		var pos int
		fmt.Sscanf(it.Key, "%d", &pos)
		c, i := pos/3, pos%3
		name := fmt.Sprintf("n%02d/img%d.JPEG", c, i)
		if c == 2 && i == 2 {
			name = "n02/img2.png"
		}
		if !bytes.Equal(it.Encoded, files[name]) || it.Label != int32(c) {
			t.Fatalf("sample %s: label %d and %d bytes, want %s's bytes and label %d", it.Key, it.Label, len(it.Encoded), name, c)
		}
		keys = append(keys, it.Key)
	}
	if slices.IsSorted(keys) {
		t.Fatal("samples were not shuffled across shards")
	}
	// a second run into the same --out is refused: it would mix with the first run's shards
	var stdout, stderr bytes.Buffer
	err := Main([]string{"--from", root, "--out", filepath.Join(out, "a", "train-%06d.tar"), "--per-shard", "8"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "train-000000.tar exists") {
		t.Fatalf("a second run into the same --out: %v", err)
	}
	// deterministic: a second run writes the same bytes
	again := shardMain(t, "--from", root, "--out", filepath.Join(out, "b", "train-%06d.tar"), "--per-shard", "4")
	for i := range paths {
		a, _ := os.ReadFile(paths[i])
		b, _ := os.ReadFile(again[i])
		if !bytes.Equal(a, b) {
			t.Fatalf("%s and %s differ", paths[i], again[i])
		}
	}
	// --shuffle=false keeps the sorted order
	plain := readShards(t, shardMain(t, "--from", root, "--out", filepath.Join(out, "c", "t-%d.tar.gz"), "--shuffle=false", "--limit", "5"))
	var plainKeys []string
	for _, it := range plain {
		plainKeys = append(plainKeys, it.Key)
	}
	if want := []string{"000000", "000001", "000002", "000003", "000004"}; !slices.Equal(plainKeys, want) {
		t.Fatalf("unshuffled, limited to 5, gzip: keys %q, want %q", plainKeys, want)
	}
}

func TestMaxSideDownscales(t *testing.T) {
	root, files := makeFolder(t, 1, 3)
	paths := shardMain(t, "--from", root, "--out", filepath.Join(t.TempDir(), "s-%03d.tar"), "--max-side", "30", "--shuffle=false")
	items := readShards(t, paths)
	if len(items) != 3 {
		t.Fatalf("%d samples, want 3", len(items))
	}
	if !bytes.Equal(items[2].Encoded, files["n00/img2.png"]) {
		t.Fatal("an 8x8 image under --max-side was not kept byte for byte")
	}
	for _, it := range items[:2] {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(it.Encoded))
		if err != nil {
			t.Fatal(err)
		}
		// sources are 60x40 and 60x41: the longer side becomes 30, the aspect ratio stays
		if cfg.Width != 30 || cfg.Height != 20 && cfg.Height != 21 {
			t.Fatalf("%s: %dx%d, want 30x20 or 30x21", it.Key, cfg.Width, cfg.Height)
		}
	}
}

func writeIDX(t *testing.T, path string, dims []int, data []byte, compress bool) {
	var buf bytes.Buffer
	buf.Write([]byte{0, 0, 8, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&buf, binary.BigEndian, uint32(d))
	}
	buf.Write(data)
	b := buf.Bytes()
	if compress {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(b)
		zw.Close()
		b = z.Bytes()
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIDXToShards(t *testing.T) {
	dir := t.TempDir()
	const n, rows, cols = 7, 3, 4
	pix := make([]byte, n*rows*cols)
	for i := range pix {
		pix[i] = byte(i * 7)
	}
	labels := []byte{3, 1, 4, 1, 5, 9, 2}
	writeIDX(t, filepath.Join(dir, "img.gz"), []int{n, rows, cols}, pix, true)
	writeIDX(t, filepath.Join(dir, "lab"), []int{n}, labels, false)
	paths := shardMain(t, "--idx-images", filepath.Join(dir, "img.gz"), "--idx-labels", filepath.Join(dir, "lab"),
		"--out", filepath.Join(dir, "out", "f-%06d.tar"), "--per-shard", "3")
	if len(paths) != 3 {
		t.Fatalf("7 samples at 3 a shard gave %d shards", len(paths))
	}
	items := readShards(t, paths)
	if len(items) != n {
		t.Fatalf("%d samples read back, want %d", len(items), n)
	}
	for _, it := range items {
		var i int
		fmt.Sscanf(it.Key, "%d", &i)
		img, err := png.Decode(bytes.NewReader(it.Encoded))
		if err != nil {
			t.Fatal(err)
		}
		g, ok := img.(*image.Gray)
		if !ok || g.Rect.Dx() != cols || g.Rect.Dy() != rows {
			t.Fatalf("sample %d: %T %v, want a %dx%d gray image", i, img, img.Bounds(), cols, rows)
		}
		if !bytes.Equal(g.Pix, pix[i*rows*cols:(i+1)*rows*cols]) || it.Label != int32(labels[i]) {
			t.Fatalf("sample %d: pixels or label %d differ from the IDX input", i, it.Label)
		}
	}
}

func TestIDXErrors(t *testing.T) {
	dir := t.TempDir()
	writeIDX(t, filepath.Join(dir, "img"), []int{2, 2, 2}, make([]byte, 8), false)
	writeIDX(t, filepath.Join(dir, "lab3"), []int{3}, make([]byte, 3), false)
	writeIDX(t, filepath.Join(dir, "short"), []int{5, 2, 2}, make([]byte, 8), false)
	for _, c := range [][2]string{{"img", "lab3"}, {"short", "lab3"}, {"img", "missing"}} {
		err := Main([]string{"--idx-images", filepath.Join(dir, c[0]), "--idx-labels", filepath.Join(dir, c[1]), "--out", filepath.Join(dir, "o-%d.tar")}, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("images %s with labels %s: no error", c[0], c[1])
		}
	}
}

// TestFashionMNISTLabels reads the installed Fashion-MNIST test labels (the images take
// seconds under the race detector; the shards in testdata/fashion-mnist exercise them).
func TestFashionMNISTLabels(t *testing.T) {
	path := "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
	if _, err := os.Stat(path); err != nil {
		t.Skip("Fashion-MNIST is not installed: " + path)
	}
	labels, err := idx.Read(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(labels.Dims, []int{10000}) {
		t.Fatalf("t10k labels %v, want 10000", labels.Dims)
	}
	counts := make([]int, 10)
	for _, l := range labels.Data {
		counts[l]++
	}
	for c, k := range counts {
		if k != 1000 {
			t.Fatalf("class %d has %d test images, want 1000", c, k)
		}
	}
}

func TestBadFlags(t *testing.T) {
	root, _ := makeFolder(t, 1, 1)
	for _, args := range [][]string{
		{"--from", root, "--out", "x/train.tar"},
		{"--from", root, "--out", "x/train-%s.tar"},
		{"--from", root, "--out", "x/%d-%d.tar"},
		{"--from", root},
		{"--out", "x/%d.tar"},
		{"--from", root, "--idx-images", "a", "--idx-labels", "b", "--out", "x/%d.tar"},
		{"--from", root, "--out", "x/%d.tar", "--per-shard", "0"},
	} {
		if err := Main(args, io.Discard, io.Discard); err == nil {
			t.Errorf("Main(%q) accepted bad flags", args)
		}
	}
}

// A sample that cannot be converted stops the run and removes the shards it wrote, so that no
// half-converted dataset is left for a glob (and a rerun into the same --out is not refused).
func TestFailedRunLeavesNoShards(t *testing.T) {
	root, files := makeFolder(t, 3, 3)
	bad := filepath.Join(root, "n01", "img1.JPEG")
	if err := os.WriteFile(bad, files["n01/img1.JPEG"][:100], 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := Main([]string{"--from", root, "--out", filepath.Join(out, "train-%06d.tar"), "--per-shard", "1", "--max-side", "16", "--shuffle=false"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "the 4 shards written so far were removed") {
		t.Fatalf("a truncated JPEG: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(out, "*")); len(left) != 0 {
		t.Fatalf("left behind: %q", left)
	}
}

// A shard that cannot be written (a full disk) fails the run, and that shard goes with the
// others: it is the half-written one that must not be left for a glob. Both while starting
// the next shard and at the very end.
func TestFullDiskLeavesNoShards(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	root, _ := makeFolder(t, 3, 3) // 9 samples
	for _, perShard := range []string{"1", "5"} {
		out := t.TempDir()
		// shard 1 is written to /dev/full: every write to it fails with ENOSPC
		if err := os.Symlink("/dev/full", filepath.Join(out, "train-000001.tar")); err != nil {
			t.Skipf("no symlinks here: %v", err)
		}
		var stdout, stderr bytes.Buffer
		err := Main([]string{"--from", root, "--out", filepath.Join(out, "train-%06d.tar"), "--per-shard", perShard, "--shuffle=false"}, &stdout, &stderr)
		if err == nil {
			t.Fatalf("--per-shard %s: a shard on a full disk did not fail the run", perShard)
		}
		if left, _ := filepath.Glob(filepath.Join(out, "*")); len(left) != 0 {
			t.Errorf("--per-shard %s: %v; left behind: %q", perShard, err, left)
		}
	}
}
