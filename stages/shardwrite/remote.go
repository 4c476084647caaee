package shardwrite

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"pipeline/stages/objstore"
)

// remoteOut uploads the shards of an s3:// --out: each is written into a temporary folder and
// uploaded (then removed) as soon as it is complete, so the disk holds one shard at a time.
// The endpoint and credentials come from the AWS environment variables and files.
type remoteOut struct {
	store    *objstore.Store
	pattern  string // the s3:// pattern
	dir      string
	uploaded []string
}

func newRemoteOut(out string) (*remoteOut, string, error) {
	if objstore.KindOf(out) != objstore.KindS3 {
		return nil, "", fmt.Errorf("--out %s: shards can be written to local paths and s3:// only", out)
	}
	if err := CheckPattern(out); err != nil {
		return nil, "", err
	}
	if strings.Contains(strings.ReplaceAll(path.Dir(out), "%%", ""), "%") {
		return nil, "", fmt.Errorf("--out %s: the shard number must be in the object name, not in its folder", out)
	}
	store, err := objstore.NewStore(objstore.Config{})
	if err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "pipeline-shard-")
	if err != nil {
		return nil, "", err
	}
	return &remoteOut{store: store, pattern: out, dir: dir}, filepath.Join(dir, path.Base(out)), nil
}

func (r *remoteOut) exists(name string) bool {
	ok, err := r.store.Exists(context.Background(), name)
	return ok || err != nil // unsure is taken as there: nothing is overwritten
}

func (r *remoteOut) upload(shard int, local string) error {
	name := fmt.Sprintf(r.pattern, shard)
	if err := r.store.Put(context.Background(), name, local); err != nil {
		return err
	}
	r.uploaded = append(r.uploaded, name)
	return os.Remove(local)
}

// abandon deletes the objects uploaded so far, so a failed run leaves no partial dataset.
func (r *remoteOut) abandon() {
	for _, name := range r.uploaded {
		r.store.Delete(context.Background(), name) // best effort: the run fails anyway
	}
}

func (r *remoteOut) cleanup() { os.RemoveAll(r.dir) }
