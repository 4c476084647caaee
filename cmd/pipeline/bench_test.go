package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/internal/repo"
)

// Shards that yield no image fail the bench, naming the shard and why, instead of being
// re-read a million times and reported as 0 samples/s with exit status 0.
func TestBenchWithNoReadableImageFails(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "train-000000.tar")
	var stdout, stderr bytes.Buffer
	code := runMain([]string{"bench", "--shards", missing, "--warmup", "0", "--images", "10"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), missing) || !strings.Contains(stderr.String(), "missing_shard") {
		t.Fatalf("exit %d, want 1 and an error naming the missing shard; stdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
}

// A shard whose first image is corrupt but whose others decode is benchmarked: the check that
// the shards yield something goes on to the first image that decodes, not just the first read.
func TestBenchSkipsACorruptFirstImage(t *testing.T) {
	src, err := os.Open(filepath.Join(repo.TestRoot(t), "testdata/imagenet-like/train-000000.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(t.TempDir(), "train-000000.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	add("000000.jpg", []byte("\xff\xd8\xff not a JPEG"))
	add("000000.cls", []byte("0"))
	tr := tar.NewReader(src)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		add(h.Name, data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// A warm-up of one image reads just the corrupt one: it stops at its limit, not failing
	// for want of a sample.
	for _, warmup := range []string{"0", "1"} {
		var stdout, stderr bytes.Buffer
		code := runMain([]string{"bench", "--shards", path, "--warmup", warmup, "--images", "8"}, &stdout, &stderr)
		if code != 0 || !strings.Contains(stdout.String(), "samples/s") {
			t.Fatalf("--warmup %s: exit %d, want 0 and a result; stdout:\n%s\nstderr:\n%s", warmup, code, stdout.String(), stderr.String())
		}
	}
}
