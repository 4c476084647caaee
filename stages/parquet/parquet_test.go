package parquet

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"pipeline/internal/hfparquet"
	"pipeline/internal/s3test"
	"pipeline/pipeline"
	"pipeline/stages/objstore"
)

type readResult struct {
	good    []string // "label:sha256 of the bytes", sorted
	reasons map[string]int
	indices map[int64]bool
}

func readAll(t *testing.T, store *objstore.Store, cfg Config) (*Dataset, readResult) {
	t.Helper()
	ctx := context.Background()
	d, err := Open(ctx, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	acct := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 64 << 20, Decoded: 1, Views: 1, Batches: 1}).Encoded
	res := readResult{reasons: map[string]int{}, indices: map[int64]bool{}}
	for p := range d.Parts() {
		r := d.Read(p, ReadOptions{Alloc: acct})
		for {
			it, err := r.Next(ctx)
			if err == io.EOF {
				break
			}
			if se, ok := pipeline.AsSampleError(err); ok {
				res.reasons[se.Reason]++
				res.indices[se.Meta.Index] = true
				continue
			}
			if err != nil {
				t.Fatalf("part %d: %v", p, err)
			}
			res.good = append(res.good, fmt.Sprintf("%d:%x", it.Label, sha256.Sum256(it.Encoded)))
			res.indices[it.Index] = true
			it.Release()
		}
		r.Close()
	}
	slices.Sort(res.good)
	return d, res
}

// TestHFParquetLocalAndS3 reads a file that Hugging Face's datasets wrote, from the disk and
// from a real S3 server: the same row groups, the image bytes and labels of the tar shards'
// samples, the path-only row skipped as no_image, the corrupt bytes passed on for the decoder
// to refuse.
func TestHFParquetLocalAndS3(t *testing.T) {
	images := hfparquet.BundledImages(t)
	if len(images) != 50 {
		t.Fatalf("%d bundled images, want 50", len(images))
	}
	file := hfparquet.Write(t, images, "img", 16) // 52 rows: 4 row groups
	var want []string
	for _, im := range images {
		want = append(want, fmt.Sprintf("%d:%x", im.Label, sha256.Sum256(im.JPEG)))
	}
	want = append(want, fmt.Sprintf("4:%x", sha256.Sum256([]byte("this is not an image"))))
	slices.Sort(want)

	store, err := objstore.NewStore(objstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Files: []string{file}, ImageColumn: "img"}
	d, local := readAll(t, store, cfg)
	if d.Parts() != 4 {
		t.Errorf("%d parts, want the 4 row groups datasets wrote", d.Parts())
	}
	if !slices.Equal(local.good, want) {
		t.Errorf("local: %d samples differ from the tar shards' %d", len(local.good), len(want))
	}
	if local.reasons[pipeline.ReasonNoImage] != 1 || len(local.reasons) != 1 || len(local.indices) != 52 {
		t.Errorf("local: skips %v over %d distinct indices, want one no_image over 52", local.reasons, len(local.indices))
	}
	if d.BufferBytes() <= 0 {
		t.Error("a row group's buffers are not counted")
	}

	srv := s3test.Start(t)
	srv.MakeBucket("hfdata")
	srv.Put("hfdata", "data/train-00000-of-00001.parquet", file)
	s3store, err := objstore.NewStore(objstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, remote := readAll(t, s3store, Config{Files: []string{"s3://hfdata/data/train-*.parquet"}, ImageColumn: "img"})
	if !slices.Equal(remote.good, local.good) || remote.reasons[pipeline.ReasonNoImage] != 1 {
		t.Errorf("s3: %d samples and skips %v, want the local file's", len(remote.good), remote.reasons)
	}

	if _, err := Open(context.Background(), store, Config{Files: []string{file}}); err == nil ||
		!strings.Contains(err.Error(), "image_column image") {
		t.Errorf("default image column on a file with img: err %v, want it named", err)
	}
}
