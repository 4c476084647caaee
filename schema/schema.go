package schema

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// Version is the schema version this package writes and reads (docs/arrow-schema.md).
const Version = "1"

// Schema metadata keys.
const (
	MetaVersion   = "pipeline.schema_version"
	MetaRecipe    = "pipeline.recipe"
	MetaNormalize = "pipeline.normalize" // {"mean":[r,g,b],"std":[r,g,b]} when tensors are float32
)

// The fixed columns that follow the view-group tensor columns, in order.
const (
	ColLabel  = "label"
	ColKey    = "key"
	ColIndex  = "index"
	ColEpoch  = "epoch"
	ColParams = "params" // optional
)

// CheckVersion reports an error when s was not written with this schema version.
func CheckVersion(s *arrow.Schema) error {
	got, ok := s.Metadata().GetValue(MetaVersion)
	if !ok {
		return fmt.Errorf("batch schema has no %s metadata", MetaVersion)
	}
	if got != Version {
		return fmt.Errorf("batch schema version %s, this reader understands %s", got, Version)
	}
	return nil
}

// Tensor returns the tensor column called name.
func Tensor(rec arrow.RecordBatch, name string) (*TensorArray, error) {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) != 1 {
		return nil, fmt.Errorf("batch has %d columns named %q, want 1", len(idx), name)
	}
	col, ok := rec.Column(idx[0]).(*TensorArray)
	if !ok {
		return nil, fmt.Errorf("column %q is %s, not %s", name, rec.Column(idx[0]).DataType(), TensorExtensionName)
	}
	return col, nil
}

// Uint8Tensor returns the view group column called name as one dense uint8 tensor without
// copying: data holds shape[0]*...*shape[len-1] bytes, where shape is [rows, tensor shape...],
// e.g. [N,H,W,3] or [N,V,H,W,3]. data aliases the record and is valid while rec is.
func Uint8Tensor(rec arrow.RecordBatch, name string) (data []byte, shape []int, err error) {
	col, err := Tensor(rec, name)
	if err != nil {
		return nil, nil, err
	}
	if vt := col.TensorType().ValueType(); vt.ID() != arrow.UINT8 {
		return nil, nil, fmt.Errorf("column %q holds %s values, not uint8 (is batch.normalize on?)", name, vt)
	}
	return col.Bytes(), append([]int{col.Len()}, col.TensorType().Shape()...), nil
}

// Float32Tensor is Uint8Tensor for the float32 columns that batch.normalize writes.
func Float32Tensor(rec arrow.RecordBatch, name string) (data []float32, shape []int, err error) {
	col, err := Tensor(rec, name)
	if err != nil {
		return nil, nil, err
	}
	if vt := col.TensorType().ValueType(); vt.ID() != arrow.FLOAT32 {
		return nil, nil, fmt.Errorf("column %q holds %s values, not float32", name, vt)
	}
	return col.Float32s(), append([]int{col.Len()}, col.TensorType().Shape()...), nil
}

// RecordBytes is the size of the buffers the record's columns reference (the batch schema has
// no dictionaries), as a sink or the memory budget counts a batch.
func RecordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	for _, col := range rec.Columns() {
		n += dataBytes(col.Data())
	}
	return n
}

func dataBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}
