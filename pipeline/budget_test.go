package pipeline

import (
	"context"
	"testing"
)

// Budget.Peak is the most held at once by all accounts together, not the sum of each
// account's own peak, which were reached at different times.
func TestBudgetPeakIsHeldAtOnce(t *testing.T) {
	b := NewBudget(BudgetSplit{Encoded: 1 << 20, Decoded: 1 << 20, Views: 1 << 20, Batches: 1 << 20})
	ctx := context.Background()
	enc := &Item{}
	if _, err := b.Encoded.Alloc(ctx, enc, 64<<10); err != nil {
		t.Fatal(err)
	}
	enc.Release() // decode gave the encoded bytes back before taking its pixels
	dec := &Item{}
	if _, err := b.Decoded.Alloc(ctx, dec, 64<<10); err != nil {
		t.Fatal(err)
	}
	dec.Release()
	if err := b.Batches.Reserve(ctx, 32<<10); err != nil {
		t.Fatal(err)
	}
	b.Batches.Return(32 << 10)
	if got, want := b.Peak(), int64(64<<10); got != want {
		t.Fatalf("Peak() = %d, want %d: never more than one 64 KiB buffer was held at once", got, want)
	}
	// Two held together do count together.
	a, c := &Item{}, &Item{}
	b.Encoded.Alloc(ctx, a, 64<<10)
	b.Views.Alloc(ctx, c, 64<<10)
	if got, want := b.Peak(), int64(128<<10); got != want {
		t.Fatalf("Peak() = %d with two 64 KiB buffers held, want %d", got, want)
	}
	a.Release()
	c.Release()
	if b.InUse() != 0 {
		t.Fatalf("InUse() = %d after every release", b.InUse())
	}
}
