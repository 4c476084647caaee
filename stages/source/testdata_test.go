package source

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"path/filepath"
	"testing"

	"pipeline/internal/repo"
)

// TestRepoTestdata reads the shard sets in testdata/ through the source, as the examples do,
// and decodes every image.
func TestRepoTestdata(t *testing.T) {
	root := repo.TestRoot(t)
	for _, c := range []struct {
		pattern       string
		n             int
		width, height int // 0: any size up to 192
		decode        func(io.Reader) (image.Image, error)
	}{
		{"testdata/imagenet-like/train-{000000..000002}.tar", 50, 0, 0, jpeg.Decode},
		{"testdata/fashion-mnist/train-{000000..000001}.tar.gz", 1024, 28, 28, png.Decode},
		{"testdata/fashion-mnist/test-000000.tar.gz", 512, 28, 28, png.Decode},
	} {
		acct := newAccount(8 << 20)
		src, err := Open(Config{Shards: Patterns{filepath.Join(root, c.pattern)}, Rank: intp(0), WorldSize: intp(1)},
			Options{Account: acct})
		if err != nil {
			t.Fatal(err)
		}
		labels := map[int32]int{}
		n := 0
		for {
			it, err := src.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", c.pattern, err)
			}
			img, err := c.decode(bytes.NewReader(it.Encoded))
			if err != nil {
				t.Fatalf("%s: %v", it.Meta, err)
			}
			b := img.Bounds()
			if c.width > 0 && (b.Dx() != c.width || b.Dy() != c.height) || max(b.Dx(), b.Dy()) > 192 {
				t.Fatalf("%s: %dx%d", it.Meta, b.Dx(), b.Dy())
			}
			labels[it.Label]++
			n++
			it.Release()
		}
		src.Close()
		if n != c.n || len(labels) != 10 {
			t.Fatalf("%s: %d samples of %d classes, want %d of 10", c.pattern, n, len(labels), c.n)
		}
	}
}
