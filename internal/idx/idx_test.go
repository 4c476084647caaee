package idx

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func write(t *testing.T, name string, data []byte, gz bool) string {
	t.Helper()
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
		data = buf.Bytes()
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var images = []byte{0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6}

// Compression is told by the magic, whatever the name says.
func TestReadsPlainAndGzipWhateverTheName(t *testing.T) {
	for _, c := range []struct {
		name string
		gz   bool
	}{{"a.gz", true}, {"a", true}, {"a.gz", false}, {"a", false}} {
		f, err := Read(write(t, c.name, images, c.gz), 3, 0)
		if err != nil {
			t.Fatalf("%s (gzip %v): %v", c.name, c.gz, err)
		}
		if !slices.Equal(f.Dims, []int{3, 1, 2}) || !bytes.Equal(f.Data, images[16:]) {
			t.Fatalf("%s (gzip %v): dims %v data %v", c.name, c.gz, f.Dims, f.Data)
		}
	}
}

func TestLimitReadsTheFirstItems(t *testing.T) {
	f, err := Read(write(t, "a", images, false), 0, 2)
	if err != nil || !slices.Equal(f.Dims, []int{2, 1, 2}) || !bytes.Equal(f.Data, []byte{1, 2, 3, 4}) {
		t.Fatalf("limit 2: %+v %v", f, err)
	}
}

func TestRefusesWrongRankAndHugeHeaders(t *testing.T) {
	if _, err := Read(write(t, "a", images, false), 1, 0); err == nil || !strings.Contains(err.Error(), "want rank 1") {
		t.Errorf("rank 3 read as rank 1: %v", err)
	}
	// A header that claims 2^32-1 x 2^32-1 bytes must fail before allocating them.
	huge := []byte{0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1}
	if _, err := Read(write(t, "h", huge, false), 0, 0); err == nil || !strings.Contains(err.Error(), "hold more than") {
		t.Errorf("huge header: %v", err)
	}
	if _, err := Read(write(t, "s", images[:20], false), 0, 0); err == nil || !strings.Contains(err.Error(), "need 6 bytes") {
		t.Errorf("truncated data: %v", err)
	}
}
