package source

import (
	"archive/tar"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"pipeline/internal/s3test"
)

// BenchmarkRemoteSource reads the same shards (4 of 250 samples of 110 kB, about the mean
// ImageNet JPEG) from the disk, from versitygw on 127.0.0.1 (put there by boto3) and from a
// net/http file server, in one run: go test -bench RemoteSource -count 3 alternates them. One
// op is one sample (encoded bytes only, no decode).
func BenchmarkRemoteSource(b *testing.B) {
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	var files []string
	for s := range 4 {
		name := fmt.Sprintf("bench-%03d.tar", s)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		tw := tar.NewWriter(f)
		img := make([]byte, 110_000)
		for i := range 250 {
			for k := range img {
				img[k] = byte(rng.Uint32())
			}
			key := fmt.Sprintf("%03d_%03d", s, i)
			for _, m := range []struct {
				ext  string
				data []byte
			}{{"jpg", img}, {"cls", []byte(fmt.Sprint(i % 10))}} {
				tw.WriteHeader(&tar.Header{Name: key + "." + m.ext, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg})
				tw.Write(m.data)
			}
		}
		if err := tw.Close(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		files = append(files, "bench/"+name, filepath.Join(dir, name))
	}
	srv := s3test.Start(b)
	srv.MakeBucket("bench")
	srv.Put("bench", files...)
	web := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer web.Close()

	for _, c := range []struct{ name, shards string }{
		{"local", filepath.Join(dir, "bench-{000..003}.tar")},
		{"s3", "s3://bench/bench/bench-{000..003}.tar"},
		{"http", web.URL + "/bench-{000..003}.tar"},
	} {
		b.Run(c.name+"/readers2", func(b *testing.B) {
			benchmarkSource(b, Config{Shards: Patterns{c.shards}, Readers: 2, Rank: intp(0), WorldSize: intp(1)})
		})
	}
}
