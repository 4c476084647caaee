package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
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
