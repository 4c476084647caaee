// Package hfparquet writes test Parquet files with Hugging Face's own datasets library (from
// the project's .venv), holding the bundled tar shards' images: what the Parquet source is
// tested on is written by the library users' files come from, not by the project's code.
package hfparquet

import (
	"archive/tar"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"pipeline/internal/repo"
	"pipeline/internal/s3test"
)

//go:embed hf_write.py
var hfWrite string

// Image is one sample of the bundled tar shards.
type Image struct {
	Key   string
	JPEG  []byte
	Label int32
}

// BundledImages reads the bundled shards' samples with archive/tar.
func BundledImages(t *testing.T) []Image {
	t.Helper()
	var out []Image
	for i := range 3 {
		f, err := os.Open(filepath.Join(repo.TestRoot(t), fmt.Sprintf("testdata/imagenet-like/train-%06d.tar", i)))
		if err != nil {
			t.Fatal(err)
		}
		byKey := map[string]*Image{}
		var order []string
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			key, ext, _ := strings.Cut(h.Name, ".")
			s := byKey[key]
			if s == nil {
				s = &Image{Key: key}
				byKey[key] = s
				order = append(order, key)
			}
			if ext == "jpg" {
				s.JPEG = data
			} else if ext == "cls" {
				l, _ := strconv.Atoi(strings.TrimSpace(string(data)))
				s.Label = int32(l)
			}
		}
		f.Close()
		for _, k := range order {
			out = append(out, *byKey[k])
		}
	}
	return out
}

// Write writes the bundled images, plus one path-only row and one corrupt row, into a
// Parquet file with Hugging Face's datasets, rowsPerGroup rows a row group.
func Write(t *testing.T, images []Image, imageColumn string, rowsPerGroup int) string {
	t.Helper()
	py := s3test.Python(t, "datasets")
	dir := t.TempDir()
	var tsv strings.Builder
	for i, im := range images {
		p := filepath.Join(dir, im.Key+".jpg")
		if err := os.WriteFile(p, im.JPEG, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&tsv, "file\t%s\t%d\n", p, im.Label)
		if i == 10 {
			fmt.Fprintf(&tsv, "pathonly\telsewhere/x.jpg\t3\n")
		}
		if i == 20 {
			fmt.Fprintf(&tsv, "corrupt\t-\t4\n")
		}
	}
	rows := filepath.Join(dir, "rows.tsv")
	if err := os.WriteFile(rows, []byte(tsv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "train-00000-of-00001.parquet")
	cmd := exec.Command(py, "-c", hfWrite, rows, out, imageColumn, strconv.Itoa(rowsPerGroup))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("datasets: %v: %s", err, b)
	}
	return out
}
