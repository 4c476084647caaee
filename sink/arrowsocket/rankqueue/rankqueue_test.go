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
