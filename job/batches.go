package job

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"pipeline/pipeline"
	"pipeline/stages/batch"
	"pipeline/stages/source"
)

// orderedBatches is the run's batch stage, on one goroutine (Run.Consume): it puts the items
// back in source order, batches them, gives each item's window slot back once its views are in
// a batch, and queues every batch for the sink with the source position it ends at. The
// batcher sees items in source order, so the position reached when a batch is complete is
// exactly the data that batch ends with.
type orderedBatches struct {
	batcher *batch.Batcher
	window  *pipeline.Window
	records chan positioned // to the sink; closed by finish
	pos     source.Position // after the last item batched

	reorder pipeline.Reorder
	ready   []*pipeline.Item
}

// push takes the next item the augment stage finished, in any order.
func (b *orderedBatches) push(ctx context.Context, it *pipeline.Item) error {
	var err error
	b.ready, err = b.reorder.Push(it, b.ready[:0])
	for i, x := range b.ready {
		b.pos = b.pos.Advance(x.Meta)
		rec, err := b.batcher.Push(ctx, x)
		// x's views are in the batch now and freed: only then may its window slot go to
		// another sample, so that the views account, sized to the window, never blocks.
		b.window.Done()
		if err == nil && rec != nil {
			err = b.send(ctx, rec)
		}
		if err != nil {
			for _, rest := range b.ready[i+1:] {
				rest.Release()
			}
			return err
		}
	}
	return err
}

// finish flushes the last batch after the last item (err nil), and closes the sink's queue
// whatever the reason the stage ended.
func (b *orderedBatches) finish(ctx context.Context, err error) error {
	defer close(b.records)
	defer b.reorder.Close()
	if err != nil {
		return nil // the run is failing: nothing more to flush
	}
	if err := b.reorder.Finish(); err != nil {
		return fmt.Errorf("batch: %w", err)
	}
	rec, err := b.batcher.Flush(ctx)
	if err != nil || rec == nil {
		return err
	}
	return b.send(ctx, rec)
}

// send queues rec for the sink; waiting for room there counts as blocked, not as the
// batcher's work.
func (b *orderedBatches) send(ctx context.Context, rec arrow.RecordBatch) error {
	select {
	case b.records <- positioned{rec, b.pos}:
		return nil
	default:
	}
	defer pipeline.WaitDownstream(ctx)()
	select {
	case b.records <- positioned{rec, b.pos}:
		return nil
	case <-ctx.Done():
		rec.Release()
		return ctx.Err()
	}
}
