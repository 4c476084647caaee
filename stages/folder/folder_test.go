package folder

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"pipeline/pipeline"
)

func makeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestScanOrderAndLabels(t *testing.T) {
	root := makeTree(t, map[string]string{
		"n02/b.JPEG": "b", "n02/a.png": "a", "n02/notes.txt": "x",
		"n01/z.jpg": "z", "n01/y.jpeg": "y",
		"n03/empty.jpg": "",
		"loose.jpg":     "not in a class folder",
	})
	l, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"n01", "n02", "n03"}; !reflect.DeepEqual(l.Classes, want) {
		t.Fatalf("classes %q, want %q", l.Classes, want)
	}
	want := []File{{"n01/y.jpeg", 0, 0}, {"n01/z.jpg", 0, 1}, {"n02/a.png", 1, 2}, {"n02/b.JPEG", 1, 3}, {"n03/empty.jpg", 2, 4}}
	if !reflect.DeepEqual(l.Files, want) {
		t.Fatalf("files %v, want %v", l.Files, want)
	}
	acct := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 1 << 20, Decoded: 1, Views: 1, Batches: 1}).Encoded
	ctx := context.Background()
	it, err := l.Read(ctx, l.Files[3], Options{Alloc: acct})
	if err != nil {
		t.Fatal(err)
	}
	if string(it.Encoded) != "b" || it.Label != 1 || it.Key != "n02/b.JPEG" || it.Shard != root || it.Index != 3 {
		t.Fatalf("read %+v %q", it.Meta, it.Encoded)
	}
	it.Release()
	_, err = l.Read(ctx, l.Files[4], Options{Alloc: acct})
	if se, ok := pipeline.AsSampleError(err); !ok || se.Reason != pipeline.ReasonEmpty {
		t.Fatalf("empty file: got %v", err)
	}
	_, err = l.Read(ctx, l.Files[0], Options{Alloc: acct, MaxFileBytes: 0})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "n01", "z.jpg")); err != nil {
		t.Fatal(err)
	}
	_, err = l.Read(ctx, l.Files[1], Options{Alloc: acct})
	if se, ok := pipeline.AsSampleError(err); !ok || se.Reason != ReasonUnreadable {
		t.Fatalf("vanished file: got %v", err)
	}
	skipped, err := l.Read(ctx, l.Files[1], Options{Alloc: acct, Skip: func(int64) bool { return true }})
	if err != nil || skipped.Encoded != nil || skipped.Key != "n01/z.jpg" {
		t.Fatalf("skipped read: %+v, %v", skipped, err)
	}
}

func TestTooLarge(t *testing.T) {
	root := makeTree(t, map[string]string{"c/big.jpg": "0123456789"})
	l, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	acct := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 1 << 20, Decoded: 1, Views: 1, Batches: 1}).Encoded
	_, err = l.Read(context.Background(), l.Files[0], Options{Alloc: acct, MaxFileBytes: 9})
	if se, ok := pipeline.AsSampleError(err); !ok || se.Reason != pipeline.ReasonTooLarge {
		t.Fatalf("too large: got %v", err)
	}
	if acct.InUse() != 0 {
		t.Fatalf("a refused file holds %d bytes", acct.InUse())
	}
}

func TestScanEmpty(t *testing.T) {
	if _, err := Scan(makeTree(t, map[string]string{"c/readme.txt": "x"})); err == nil {
		t.Fatal("a folder without images must be an error")
	}
	if _, err := Scan(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("a missing folder must be an error")
	}
}

// TestScanFollowsSymlinks lists symlinked class folders and image files as torchvision's
// ImageFolder does (a subset of ImageNet is often a tree of links): skipping them silently
// dropped their samples and renumbered the classes after them.
func TestScanFollowsSymlinks(t *testing.T) {
	elsewhere := makeTree(t, map[string]string{"n02/c.jpg": "c", "d.jpg": "d"})
	root := makeTree(t, map[string]string{"n01/a.jpg": "a", "n03/e.jpg": "e"})
	links := map[string]string{
		filepath.Join(root, "n02"):          filepath.Join(elsewhere, "n02"),
		filepath.Join(root, "n01", "b.jpg"): filepath.Join(elsewhere, "d.jpg"),
	}
	for link, target := range links {
		if err := os.Symlink(target, link); err != nil {
			t.Skipf("no symlinks here: %v", err)
		}
	}
	l, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"n01", "n02", "n03"}; !reflect.DeepEqual(l.Classes, want) {
		t.Fatalf("classes %q, want %q", l.Classes, want)
	}
	want := []File{{"n01/a.jpg", 0, 0}, {"n01/b.jpg", 0, 1}, {"n02/c.jpg", 1, 2}, {"n03/e.jpg", 2, 3}}
	if !reflect.DeepEqual(l.Files, want) {
		t.Fatalf("files %v, want %v", l.Files, want)
	}
	acct := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 1 << 20, Decoded: 1, Views: 1, Batches: 1}).Encoded
	it, err := l.Read(context.Background(), l.Files[1], Options{Alloc: acct})
	if err != nil || string(it.Encoded) != "d" {
		t.Fatalf("linked file: %v %q", err, it.Encoded)
	}
	it.Release()
}
