package idxdata

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

func TestReadGzippedIDX(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	images := write("img.gz", []byte{0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6})
	labels := write("lab.gz", []byte{0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9})
	im, err := Read(images, labels, 2)
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 2 || im.H != 1 || im.W != 2 || !bytes.Equal(im.Pix, []byte{1, 2, 3, 4}) || im.Labels[1] != 8 {
		t.Fatalf("read %+v", im)
	}
	if got := im.RGB(1, nil); !bytes.Equal(got, []byte{3, 3, 3, 4, 4, 4}) {
		t.Errorf("RGB %v", got)
	}
	if _, err := Read(labels, labels, 0); err == nil {
		t.Error("a labels file read as images")
	}
}
