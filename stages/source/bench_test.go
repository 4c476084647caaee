package source

import (
	"context"
	"path/filepath"
	"testing"

	"pipeline/internal/repo"
)

// BenchmarkSource reads samples (encoded bytes only, no decode) from the repo's testdata shards
// (in the page cache after the first pass) and from the synthetic source. One op is one sample.
func BenchmarkSource(b *testing.B) {
	root := repo.TestRoot(b)
	photos := Patterns{filepath.Join(root, "testdata/imagenet-like/train-{000000..000002}.tar")}
	fmnist := Patterns{filepath.Join(root, "testdata/fashion-mnist/train-{000000..000001}.tar.gz")}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"photos-tar/readers1", Config{Shards: photos, Readers: 1}},
		{"photos-tar/readers3", Config{Shards: photos, Readers: 3}},
		{"photos-tar/readers1-buffer256", Config{Shards: photos, Readers: 1, ShuffleBuffer: 256}},
		{"fmnist-tar.gz/readers1", Config{Shards: fmnist, Readers: 1}},
		{"fmnist-tar.gz/readers2", Config{Shards: fmnist, Readers: 2}},
		{"synthetic-500x375", Config{Synthetic: &SyntheticConfig{Count: 1000}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.cfg.Rank, c.cfg.WorldSize = intp(0), intp(1)
			benchmarkSource(b, c.cfg)
		})
	}
}

// benchmarkSource reads b.N samples from a source opened with cfg, reporting bytes per sample.
func benchmarkSource(b *testing.B, cfg Config) {
	acct := newAccount(256 << 20)
	src, err := Open(cfg, Options{Account: acct, Epochs: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		it, err := src.Next(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		bytes += int64(len(it.Encoded))
		it.Release()
	}
	b.SetBytes(bytes / int64(b.N))
}
