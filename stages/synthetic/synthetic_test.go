package synthetic

import (
	"bytes"
	"context"
	"image/jpeg"
	"testing"

	"pipeline/pipeline"
)

func TestImagesDecodeAndDiffer(t *testing.T) {
	s, err := New(96, 64)
	if err != nil {
		t.Fatal(err)
	}
	acct := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 1 << 20, Decoded: 1, Views: 1, Batches: 1}).Encoded
	seen := map[string]bool{}
	for i := int64(0); i < 2*Variants; i++ {
		it, err := s.Read(context.Background(), i, acct, false)
		if err != nil {
			t.Fatal(err)
		}
		if it.Index != i || it.Label != int32(i%Variants) {
			t.Fatalf("sample %d: %+v", i, it.Meta)
		}
		img, err := jpeg.Decode(bytes.NewReader(it.Encoded))
		if err != nil {
			t.Fatalf("sample %d does not decode: %v", i, err)
		}
		if b := img.Bounds(); b.Dx() != 96 || b.Dy() != 64 {
			t.Fatalf("sample %d is %v, want 96x64", i, b)
		}
		seen[string(it.Encoded)] = true
		it.Release()
	}
	if len(seen) != Variants {
		t.Fatalf("%d distinct images, want %d", len(seen), Variants)
	}
	if acct.InUse() != 0 {
		t.Fatalf("%d bytes still held", acct.InUse())
	}
	if it, _ := s.Read(context.Background(), 5, acct, true); it.Encoded != nil || acct.InUse() != 0 {
		t.Fatal("a skipped read must not allocate")
	}
}

// TestNotFlat checks that the content is photo-like, not a flat field: a JPEG of it takes
// well over the ~0.05 byte a pixel of a flat image (about 0.45 here; ImageNet photos ~0.6).
func TestNotFlat(t *testing.T) {
	s, err := New(256, 192)
	if err != nil {
		t.Fatal(err)
	}
	for v, n := range s.Sizes() {
		if bpp := float64(n) / (256 * 192); bpp < 0.4 {
			t.Errorf("variant %d: %.2f bytes a pixel, want a photo-like > 0.4", v, bpp)
		}
	}
	if _, err := New(0, 10); err == nil {
		t.Fatal("a zero width must be an error")
	}
}
