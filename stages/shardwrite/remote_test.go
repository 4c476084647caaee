package shardwrite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/internal/s3test"
	"pipeline/stages/objstore"
)

// TestShardsToS3 writes shards into a real S3 server: the objects are byte for byte the shards
// of the same run to a local folder, and a second run into the same place is refused.
func TestShardsToS3(t *testing.T) {
	root, _ := makeFolder(t, 3, 3)
	srv := s3test.Start(t)
	srv.MakeBucket("shards")
	local := shardMain(t, "--from", root, "--out", filepath.Join(t.TempDir(), "train-%06d.tar"), "--per-shard", "4")
	remote := shardMain(t, "--from", root, "--out", "s3://shards/imgs/train-%06d.tar", "--per-shard", "4")
	if len(remote) != 3 || len(local) != 3 {
		t.Fatalf("wrote %d shards to s3 and %d locally, want 3", len(remote), len(local))
	}
	store, err := objstore.NewStore(objstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range local {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("s3://shards/imgs/train-%06d.tar", i)
		f, err := store.Open(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: err %v, equal to the local shard %v", name, err, bytes.Equal(got, want))
		}
		if _, err := os.Stat(remote[i]); !os.IsNotExist(err) {
			t.Errorf("the temporary copy %s of an uploaded shard is still there", remote[i])
		}
	}
	var stdout, stderr bytes.Buffer
	err = Main([]string{"--from", root, "--out", "s3://shards/imgs/train-%06d.tar"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "exists, from an earlier run") {
		t.Fatalf("a second run into the same place: %v", err)
	}
}
