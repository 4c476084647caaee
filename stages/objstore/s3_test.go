package objstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"pipeline/internal/s3test"
)

// TestS3AgainstVersitygw reads objects that boto3 put into a real S3 server: whole, at
// offsets, by a listing glob, and after they were replaced.
func TestS3AgainstVersitygw(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket("shards")
	dir := t.TempDir()
	var files []string
	data := map[string][]byte{}
	for i, name := range []string{"train-000.tar", "train-001.tar", "val-000.tar"} {
		data[name] = randomBytes(300_000+i*1000, uint64(10+i))
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data[name], 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, "sub/"+name, path)
	}
	srv.Put("shards", files...)

	store, err := NewStore(testConfig()) // the endpoint comes from AWS_ENDPOINT_URL_S3
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	shards, err := store.Expand(ctx, "s3://shards/sub/train-*.tar", "s3://shards/sub/val-{000..000}.tar")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"s3://shards/sub/train-000.tar", "s3://shards/sub/train-001.tar", "s3://shards/sub/val-000.tar"}
	if len(shards) != 3 || shards[0].Path != want[0] || shards[1].Path != want[1] || shards[2].Path != want[2] {
		t.Fatalf("expanded %v, want %v", shards, want)
	}
	for _, s := range shards {
		o, err := store.Open(ctx, s.Path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(o)
		o.Close()
		if want := data[filepath.Base(s.Path)]; err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: err %v, %d bytes, equal %v", s.Path, err, len(got), bytes.Equal(got, want))
		}
	}

	o, err := store.Open(ctx, "s3://shards/sub/train-000.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	p := make([]byte, 1000)
	if _, err := o.ReadAt(p, 250_000); err != nil || !bytes.Equal(p, data["train-000.tar"][250_000:251_000]) {
		t.Fatalf("ReadAt: %v", err)
	}
	// boto3 replaces the object; the next request of the open reader must see it changed.
	srv.Put("shards", "sub/train-000.tar", filepath.Join(dir, "train-001.tar"))
	if _, err := o.ReadAt(p, 1000); !errors.Is(err, ErrChanged) {
		t.Fatalf("after the object was replaced: err %v, want ErrChanged", err)
	}

	if _, err := store.Open(ctx, "s3://shards/sub/nope.tar"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing object: err %v, want os.ErrNotExist", err)
	}
}
