package rankqueue

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/sink/arrowsocket/batchtest"
)

var small = batchtest.Shape{Rows: 2, Height: 4, Width: 4}

// A batch larger than QueueBytes still goes into an empty queue, never into a busy one.
func TestOversizedBatchUsesEmptyQueue(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d, err := New(Config{World: 1, QueueBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Put(ctx, batchtest.Batch(mem, small, 0)); err != nil {
		t.Fatal(err)
	}
	full, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Put(full, batchtest.Batch(mem, small, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("second batch into a full queue: %v", err)
	}
	c, err := d.Claim(0, 1, "test")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.Next(ctx)
	if err != nil || batchtest.BatchOf(rec, small) != 0 {
		t.Fatalf("Next: %v", err)
	}
	c.Done()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx); err != io.EOF {
		t.Fatalf("Next after Close: %v, want io.EOF", err)
	}
}

func TestSchemaChangeIsAnError(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	d, _ := New(Config{World: 2, QueueBytes: 1 << 20})
	ctx := context.Background()
	if err := d.Put(ctx, batchtest.Batch(mem, small, 0)); err != nil {
		t.Fatal(err)
	}
	other := batchtest.Shape{Rows: 2, Height: 4, Width: 4, Groups: []string{"global", "local"}}
	if err := d.Put(ctx, batchtest.Batch(mem, other, 1)); err == nil || !strings.Contains(err.Error(), "batch 1 has schema") {
		t.Fatalf("Put with another schema: %v", err)
	}
	d.Abort(errors.New("test over"))
}

// Finish ends the stream the way the run ended: cleanly after a clean run, with an error for
// every consumer after Fail or a cancelled Put, releasing what was still queued.
func TestFinishFollowsTheRun(t *testing.T) {
	ctx := context.Background()
	for _, end := range []string{"clean", "fail", "cancelled put"} {
		t.Run(end, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			d, _ := New(Config{World: 1, QueueBytes: 1})
			if err := d.Put(ctx, batchtest.Batch(mem, small, 0)); err != nil {
				t.Fatal(err)
			}
			switch end {
			case "fail":
				d.Fail(errors.New("decode: disk on fire"))
			case "cancelled put":
				cancelled, cancel := context.WithCancel(ctx)
				cancel()
				if err := d.Put(cancelled, batchtest.Batch(mem, small, 1)); !errors.Is(err, context.Canceled) {
					t.Fatalf("Put into a full queue with a cancelled context: %v", err)
				}
			}
			c, err := d.Claim(0, 1, "test")
			if err != nil {
				t.Fatal(err)
			}
			finished := make(chan error, 1)
			if end == "clean" {
				go func() { finished <- d.Finish(ctx) }() // waits for the batch to be sent
				if _, err := c.Next(ctx); err != nil {
					t.Fatal(err)
				}
				c.Done()
				if err := <-finished; err != nil {
					t.Fatalf("Finish after a clean run: %v", err)
				}
				if _, err := c.Next(ctx); err != io.EOF {
					t.Fatalf("Next after a clean Finish: %v, want io.EOF", err)
				}
				return
			}
			if err := d.Finish(ctx); err != nil {
				t.Fatalf("Finish after a failed run: %v (the run reports its own error)", err)
			}
			if _, err := c.Next(ctx); err == nil || !strings.Contains(err.Error(), "the producer failed") {
				t.Fatalf("Next after a failed run: %v, want the producer's failure", err)
			}
		})
	}
}

func TestSummaryListsRanksAndRefusals(t *testing.T) {
	d, _ := New(Config{World: 2, QueueBytes: 1 << 20})
	if _, err := d.Claim(0, 2, "gpu0"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Claim(0, 2, "gpu1"); err == nil {
		t.Fatal("rank 0 claimed twice")
	} else {
		d.Refused("gpu1", err)
	}
	s := d.Summary()
	ranks := s["ranks"].([]RankStats)
	refused := s["refused"].([]string)
	if len(ranks) != 2 || ranks[0].Consumer != "gpu0" || ranks[1].Consumer != "" {
		t.Fatalf("ranks %+v", ranks)
	}
	if len(refused) != 1 || !strings.HasPrefix(refused[0], "gpu1: ") {
		t.Fatalf("refused %q", refused)
	}
	d.Abort(errors.New("test over"))
}

// A rank that connects after the run failed (another rank died, say) is handed out, not
// refused, and its first Next is the cause: it sees the aborted stream the others see.
func TestClaimAfterAbortGetsTheCause(t *testing.T) {
	d, err := New(Config{World: 2, QueueBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("rank 0 consumer lost after 2 batches")
	d.Abort(cause)
	c, err := d.Claim(1, 2, "late")
	if err != nil {
		t.Fatalf("Claim after the abort: %v", err)
	}
	if _, err := c.Next(context.Background()); !errors.Is(err, cause) {
		t.Fatalf("Next after the abort: %v, want %v", err, cause)
	}
	if _, err := d.Claim(1, 2, "again"); err == nil {
		t.Fatal("rank 1 served twice after the abort")
	}
}
