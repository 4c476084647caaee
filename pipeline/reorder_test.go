package pipeline

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func seqs(items []*Item) []int64 {
	var out []int64
	for _, it := range items {
		out = append(out, it.Seq)
	}
	return out
}

func TestReorderReleasesInSeqOrder(t *testing.T) {
	var r Reorder
	var got []int64
	for _, seq := range []int64{2, 0, 3, 1, 4} {
		ready, err := r.Push(&Item{Meta: Meta{Seq: seq}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, seqs(ready)...)
	}
	if want := []int64{0, 1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if r.Pending() != 0 || r.Finish() != nil {
		t.Fatalf("pending %d, finish %v after a complete stream", r.Pending(), r.Finish())
	}
}

func TestReorderReportsDuplicatesAndLosses(t *testing.T) {
	acct := NewBudget(BudgetSplit{Encoded: 1 << 20, Decoded: 1 << 20, Views: 1 << 20, Batches: 1 << 20}).Encoded
	var r Reorder
	push := func(seq int64) error {
		it := &Item{Meta: Meta{Seq: seq, Key: "k"}}
		if _, err := acct.Alloc(context.Background(), it, 10); err != nil {
			t.Fatal(err)
		}
		_, err := r.Push(it, nil)
		return err
	}
	for _, seq := range []int64{0, 2, 3} {
		if err := push(seq); err != nil {
			t.Fatal(err)
		}
	}
	for _, seq := range []int64{0, 2} {
		if err := push(seq); err == nil || !strings.Contains(err.Error(), "arrived twice") {
			t.Fatalf("seq %d pushed twice: error %v", seq, err)
		}
	}
	if err := r.Finish(); err == nil || !strings.Contains(err.Error(), "2 items wait for seq 1") {
		t.Fatalf("finish error %v, want one naming the 2 held items and seq 1", err)
	}
	r.Close()
	r.Close()
	if r.Pending() != 0 {
		t.Fatalf("%d items still held after Close", r.Pending())
	}
	// Item 0 went out ready (the caller owns it); the duplicates and the held items are released.
	if used, want := acct.InUse(), int64(SizeClass(10)); used != want {
		t.Fatalf("account holds %d bytes, want %d (item 0's)", used, want)
	}
}
