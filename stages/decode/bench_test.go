package decode

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// defaultShards are the ImageNet-like benchmark shards made by
// shared/bench/make_imagenet_like.sh; PIPELINE_BENCH_SHARDS overrides them with a directory of
// .tar files, one .tar file or a glob.
const defaultShards = "/work/data/imagenet-like/*.tar"

// benchLimit caps the JPEGs held in memory: enough for a representative mix of sizes.
const benchLimit = 250

var shardJPEGs = sync.OnceValues(func() ([][]byte, error) {
	pattern := os.Getenv("PIPELINE_BENCH_SHARDS")
	if pattern == "" {
		pattern = defaultShards
	} else if fi, err := os.Stat(pattern); err == nil && fi.IsDir() {
		pattern = filepath.Join(pattern, "*.tar")
	}
	paths, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no shards match %s (make them with shared/bench/make_imagenet_like.sh, or set PIPELINE_BENCH_SHARDS)", pattern)
	}
	slices.Sort(paths)
	var images [][]byte
	for _, p := range paths {
		if images, err = appendJPEGs(images, p); err != nil {
			return nil, err
		}
		if len(images) >= benchLimit {
			return images[:benchLimit], nil
		}
	}
	return images, nil
})

// appendJPEGs appends the .jpg/.jpeg members of one tar shard, up to benchLimit in all.
func appendJPEGs(images [][]byte, path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return images, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for len(images) < benchLimit {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return images, fmt.Errorf("shard %s: %w", path, err)
		}
		ext := strings.ToLower(filepath.Ext(h.Name))
		if h.Typeflag != tar.TypeReg || ext != ".jpg" && ext != ".jpeg" {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return images, fmt.Errorf("shard %s: %s: %w", path, h.Name, err)
		}
		images = append(images, data)
	}
	return images, nil
}

func benchImages(tb testing.TB) [][]byte {
	images, err := shardJPEGs()
	if err != nil {
		tb.Skip(err)
	}
	return images
}

// BenchmarkDecodeJPEG decodes real photos with each backend into one reused buffer (as the
// pool gives in steady state). Run it on one core to read images/s per core:
//
//	taskset -c 0 go test -run x -bench . -benchtime 3s -count 3 ./stages/decode/
func BenchmarkDecodeJPEG(b *testing.B) {
	images := benchImages(b)
	var encoded int64
	for _, im := range images {
		encoded += int64(len(im))
	}
	for _, backend := range backends() {
		b.Run(strings.ReplaceAll(backend.name, "/", "-"), func(b *testing.B) {
			d := &Decoder{jpeg: backend}
			var buf []byte
			alloc := func(n int) ([]byte, error) {
				if cap(buf) < n {
					buf = make([]byte, n)
				}
				return buf[:n], nil
			}
			b.SetBytes(encoded / int64(len(images)))
			n := 0
			for b.Loop() {
				if _, err := d.Decode(images[n%len(images)], alloc); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// TestShardsBackendsAgree compares the two backends on real photos from the benchmark shards
// (skipped when they are absent).
func TestShardsBackendsAgree(t *testing.T) {
	bs := backends()
	if len(bs) < 2 {
		t.Skip("built without cgo: only image/jpeg")
	}
	images := benchImages(t)
	images = images[:min(len(images), 8)]
	worstMax, sumMean := 0, 0.0
	for i, data := range images {
		turbo, err := (&Decoder{jpeg: bs[0]}).Decode(data, nil)
		if err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		std, err := (&Decoder{jpeg: bs[1]}).Decode(data, nil)
		if err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		maxD, meanD := diff(t, turbo, std)
		worstMax, sumMean = max(worstMax, maxD), sumMean+meanD
	}
	meanD := sumMean / float64(len(images))
	t.Logf("%d photos: libjpeg-turbo vs image/jpeg max diff %d, mean %.3f", len(images), worstMax, meanD)
	if worstMax > 6 || meanD > 0.2 {
		t.Fatalf("backends disagree on photos: max diff %d, mean %.3f", worstMax, meanD)
	}
}
