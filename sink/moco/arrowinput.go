package moco

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"pipeline/schema"
)

// The view groups the trainer reads: the MoCo recipes' query and key views.
const (
	groupQuery = "q"
	groupKey   = "k"
)

// viewColumn is one tensor column of a batch: N uint8 images H x W x 3, contiguous.
type viewColumn struct {
	pix     []uint8 // N*H*W*3 bytes: a view of the Arrow buffer, not a copy
	n, h, w int
}

// readViews returns the pixels of the view group column name without copying, read through
// the batch schema: one uint8 [H,W,3] view per row.
func readViews(rec arrow.RecordBatch, name string) (viewColumn, error) {
	pix, shape, err := schema.Uint8Tensor(rec, name)
	if err != nil {
		return viewColumn{}, err
	}
	if len(shape) != 4 || shape[3] != 3 {
		return viewColumn{}, fmt.Errorf("column %q holds tensors of shape %v a row, want one [H,W,3] view", name, shape[1:])
	}
	return viewColumn{pix: pix, n: shape[0], h: shape[1], w: shape[2]}, nil
}

// readEpoch returns the epoch column's first value (every row of a batch has the same).
func readEpoch(rec arrow.RecordBatch) (int, error) {
	idx := rec.Schema().FieldIndices(schema.ColEpoch)
	if len(idx) == 0 {
		return 0, fmt.Errorf("batch has no %s column", schema.ColEpoch)
	}
	col, ok := rec.Column(idx[0]).(*array.Int32)
	if !ok || col.Len() == 0 {
		return 0, fmt.Errorf("%s column is %s with %d rows, want int32", schema.ColEpoch, rec.Column(idx[0]).DataType(), rec.Column(idx[0]).Len())
	}
	return int(col.Value(0)), nil
}
