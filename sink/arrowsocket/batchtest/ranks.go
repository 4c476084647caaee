package batchtest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Stream is one rank's batches as the socket and Flight readers give them.
type Stream interface {
	Next() bool
	RecordBatch() arrow.RecordBatch
	Err() error
}

// Numbers reads s to its end, checks every batch against shape and returns the batch numbers
// in the order they came.
func Numbers(s Stream, shape Shape) ([]int, error) {
	var got []int
	for s.Next() {
		b := BatchOf(s.RecordBatch(), shape)
		if err := Check(s.RecordBatch(), shape, b); err != nil {
			return got, err
		}
		got = append(got, b)
	}
	return got, s.Err()
}

// Producer is the side of a transport sink that takes batches.
type Producer interface {
	Write(ctx context.Context, rec arrow.RecordBatch) error
	Close() error
}

// CheckRanks writes batches numbered 0 to batches-1 to p, then closes it, while world readers
// run read(rank) (which returns the batch numbers that rank got), and fails t unless rank r got
// exactly r, r+world, r+2*world, ... in that order: disjoint, together everything.
func CheckRanks(t *testing.T, p Producer, mem memory.Allocator, shape Shape, world, batches int, read func(rank int) ([]int, error)) {
	t.Helper()
	got := make([][]int, world)
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[r], errs[r] = read(r)
		}()
	}
	ctx := context.Background()
	for b := range batches {
		if err := p.Write(ctx, Batch(mem, shape, b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for r := range world {
		var want []int
		for b := r; b < batches; b += world {
			want = append(want, b)
		}
		if errs[r] != nil || fmt.Sprint(got[r]) != fmt.Sprint(want) {
			t.Errorf("rank %d read %v (err %v), want %v", r, got[r], errs[r], want)
		}
	}
}
