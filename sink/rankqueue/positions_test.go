package rankqueue

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/sink/arrowsocket/batchtest"
)

// state is the runtime's hand-off after `batches` batches of 2 samples each.
func state(batches int64) []byte {
	return []byte(fmt.Sprintf(`{"epoch":0,"offset":%d,"batches":%d}`, 2*batches, batches))
}

// A run resumed after 3 batches of a two-rank stream numbers its batches on from 3, deals them
// by that number, and stamps each with where the stream stands after it and the start of its
// round (its first round, cut by the resume, starts where the run does).
func TestPositionsContinueTheStream(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d, _ := New(Config{World: 2, QueueBytes: 1 << 20})
	ctx := context.Background()
	d.SetPipelineState(state(3))
	for b := int64(3); b < 7; b++ {
		d.SetPipelineState(state(b + 1))
		if err := d.Put(ctx, batchtest.Batch(mem, small, int(b))); err != nil {
			t.Fatal(err)
		}
	}
	want := [2][]string{ // per rank: batch, position after it, round start
		{`4 {"epoch":0,"offset":10} {"position":{"epoch":0,"offset":8},"batches":4}`,
			`6 {"epoch":0,"offset":14} {"position":{"epoch":0,"offset":12},"batches":6}`},
		{`3 {"epoch":0,"offset":8} {"position":{"epoch":0,"offset":6},"batches":3}`,
			`5 {"epoch":0,"offset":12} {"position":{"epoch":0,"offset":8},"batches":4}`},
	}
	for rank := range 2 {
		c, err := d.Claim(rank, 2, "test")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for range want[rank] {
			rec, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			md := Metadata(rec)
			if fmt.Sprint(batchtest.BatchOf(rec, small)) != md[MetaBatch] {
				t.Errorf("rank %d: batch %d stamped %s", rank, batchtest.BatchOf(rec, small), md[MetaBatch])
			}
			got = append(got, strings.Join([]string{md[MetaBatch], md[MetaPosition], md[MetaRoundStart]}, " "))
			c.Done()
		}
		if strings.Join(got, "\n") != strings.Join(want[rank], "\n") {
			t.Errorf("rank %d got\n%s\nwant\n%s", rank, strings.Join(got, "\n"), strings.Join(want[rank], "\n"))
		}
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := d.Summary()["batches"]; n != int64(4) {
		t.Errorf("summary: %v batches, want the 4 of this run", n)
	}
}

// Without the runtime's hand-off (a sink used on its own) batches carry no metadata; a state
// that does not parse fails the next Put rather than sending batches without positions.
func TestPositionsNeedTheHandOff(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	d, _ := New(Config{World: 1, QueueBytes: 1 << 20})
	c, _ := d.Claim(0, 1, "test")
	if err := d.Put(ctx, batchtest.Batch(mem, small, 0)); err != nil {
		t.Fatal(err)
	}
	rec, err := c.Next(ctx)
	if err != nil || Metadata(rec) != nil {
		t.Fatalf("Next: %v, metadata %v, want none", err, Metadata(rec))
	}
	c.Done()
	d.SetPipelineState([]byte(`{"epoch":0,"offset":4,"batches":"two"}`))
	if err := d.Put(ctx, batchtest.Batch(mem, small, 1)); err == nil || !strings.Contains(err.Error(), "pipeline state") {
		t.Fatalf("Put after a bad state: %v", err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx); err != io.EOF {
		t.Fatalf("Next after Close: %v", err)
	}
}
