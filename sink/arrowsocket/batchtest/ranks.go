package batchtest

import (
	"context"
	"fmt"
	"strings"
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
	wait := readRanks(world, read)
	writeAll(t, p, mem, shape, 0, batches, func(int) {})
	got, errs := wait()
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

// StatefulProducer is a transport sink that passes the runtime's positions on (sink.Stateful).
type StatefulProducer interface {
	Producer
	SetPipelineState(state []byte)
}

// CheckPositions is CheckRanks for a run resumed after `first` batches of Shape.Rows samples
// each, with the runtime's hand-off of positions: read(rank) returns the metadata of each batch
// that rank got, and every batch must carry its number in the whole stream (first, first+1,
// ... dealt by that number), the source position after it and the state at its round's start.
func CheckPositions(t *testing.T, p StatefulProducer, mem memory.Allocator, shape Shape, world, first, batches int,
	read func(rank int) ([]map[string]string, error)) {
	t.Helper()
	state := func(b int) string { return fmt.Sprintf(`{"epoch":0,"offset":%d}`, b*shape.Rows) }
	wait := readRanks(world, read)
	handOff := func(b int) { // the runtime's state after b batches
		p.SetPipelineState([]byte(fmt.Sprintf(`{"epoch":0,"offset":%d,"batches":%d}`, b*shape.Rows, b)))
	}
	handOff(first)
	writeAll(t, p, mem, shape, first, batches, func(b int) { handOff(b + 1) })
	got, errs := wait()
	for r := range world {
		var want, have []string
		for b := first; b < first+batches; b++ {
			if b%world == r {
				start := max(b-b%world, first)
				want = append(want, fmt.Sprintf(`%d %s {"position":%s,"batches":%d}`, b, state(b+1), state(start), start))
			}
		}
		for _, md := range got[r] {
			have = append(have, fmt.Sprintf("%s %s %s", md["pipeline.batch"], md["pipeline.position"], md["pipeline.round_start"]))
		}
		if errs[r] != nil || fmt.Sprint(have) != fmt.Sprint(want) {
			t.Errorf("rank %d read (err %v)\n%s\nwant\n%s", r, errs[r], strings.Join(have, "\n"), strings.Join(want, "\n"))
		}
	}
}

// readRanks runs read(rank) for every rank at once; wait returns what each got once all ended.
func readRanks[T any](world int, read func(rank int) (T, error)) (wait func() ([]T, []error)) {
	got := make([]T, world)
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[r], errs[r] = read(r)
		}()
	}
	return func() ([]T, []error) { wg.Wait(); return got, errs }
}

// writeAll writes batches first to first+n-1 to p, calling before(b) ahead of batch b, then
// closes p.
func writeAll(t *testing.T, p Producer, mem memory.Allocator, shape Shape, first, n int, before func(b int)) {
	t.Helper()
	ctx := context.Background()
	for b := first; b < first+n; b++ {
		before(b)
		if err := p.Write(ctx, Batch(mem, shape, b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}
