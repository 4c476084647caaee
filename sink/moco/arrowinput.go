package moco

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// viewColumn is one tensor column of a batch: N uint8 images H x W x 3, contiguous.
type viewColumn struct {
	pix     []uint8 // N*H*W*3 bytes: a view of the Arrow buffer, not a copy
	n, h, w int
}

// readViews finds the tensor column name and returns its pixels without copying. The column is
// an arrow.fixed_shape_tensor extension or its storage, FixedSizeList<uint8>[H*W*3]; H and W
// come from the extension's {"shape":[H,W,3]} metadata, else the images are taken as square.
func readViews(rec arrow.RecordBatch, name string) (viewColumn, error) {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return viewColumn{}, fmt.Errorf("batch has no column %q", name)
	}
	col := rec.Column(idx[0])
	meta := ""
	if ext, ok := col.(array.ExtensionArray); ok {
		meta = ext.ExtensionType().Serialize()
		col = ext.Storage()
	} else if m := rec.Schema().Field(idx[0]).Metadata; m.FindKey("ARROW:extension:metadata") >= 0 {
		meta = m.Values()[m.FindKey("ARROW:extension:metadata")]
	}
	fsl, ok := col.(*array.FixedSizeList)
	if !ok {
		return viewColumn{}, fmt.Errorf("column %q is %s, want fixed_size_list<uint8>", name, col.DataType())
	}
	values, ok := fsl.ListValues().(*array.Uint8)
	if !ok {
		return viewColumn{}, fmt.Errorf("column %q holds %s, want uint8", name, fsl.ListValues().DataType())
	}
	size := int(fsl.DataType().(*arrow.FixedSizeListType).Len())
	h, w, err := imageSize(meta, size)
	if err != nil {
		return viewColumn{}, fmt.Errorf("column %q: %w", name, err)
	}
	n := fsl.Len()
	start := fsl.Offset() * size
	all := values.Uint8Values()
	if len(all) < start+n*size {
		return viewColumn{}, fmt.Errorf("column %q: %d bytes for %d images of %d", name, len(all)-start, n, size)
	}
	return viewColumn{pix: all[start : start+n*size], n: n, h: h, w: w}, nil
}

// imageSize reads H and W from fixed_shape_tensor metadata, or assumes square RGB images.
func imageSize(meta string, size int) (h, w int, err error) {
	if meta != "" {
		var m struct {
			Shape []int `json:"shape"`
		}
		if err := json.Unmarshal([]byte(meta), &m); err != nil {
			return 0, 0, fmt.Errorf("tensor metadata %q: %w", meta, err)
		}
		if len(m.Shape) != 3 || m.Shape[2] != 3 || m.Shape[0]*m.Shape[1]*3 != size {
			return 0, 0, fmt.Errorf("tensor shape %v: want one [H,W,3] view of %d bytes", m.Shape, size)
		}
		return m.Shape[0], m.Shape[1], nil
	}
	side := int(math.Round(math.Sqrt(float64(size / 3))))
	if side*side*3 != size {
		return 0, 0, fmt.Errorf("%d bytes a row is no square RGB image and the column has no shape metadata", size)
	}
	return side, side, nil
}

// readEpoch returns the epoch column's first value (every row of a batch has the same).
func readEpoch(rec arrow.RecordBatch) (int, error) {
	idx := rec.Schema().FieldIndices("epoch")
	if len(idx) == 0 {
		return 0, fmt.Errorf("batch has no epoch column")
	}
	col, ok := rec.Column(idx[0]).(*array.Int32)
	if !ok || col.Len() == 0 {
		return 0, fmt.Errorf("epoch column is %s with %d rows, want int32", rec.Column(idx[0]).DataType(), rec.Column(idx[0]).Len())
	}
	return int(col.Value(0)), nil
}
