package schema

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// TensorArray is an array of arrow.fixed_shape_tensor values. Its accessors return views into
// the Arrow buffer, never copies: they stay valid while the array (or its record) is retained.
type TensorArray struct {
	array.ExtensionArrayBase
}

// TensorType is the array's type.
func (a *TensorArray) TensorType() *TensorType { return a.DataType().(*TensorType) }

// ValueStr prints row i as its list of values.
func (a *TensorArray) ValueStr(i int) string { return a.Storage().ValueStr(i) }

// RowBytes is the raw little-endian bytes of row i's tensor (row-major, TensorType.Shape).
func (a *TensorArray) RowBytes(i int) []byte {
	n := a.TensorType().BytesPerRow()
	return a.Bytes()[i*n : (i+1)*n]
}

// Bytes is the raw bytes of all rows, one after another: a dense [Len, Shape...] tensor.
func (a *TensorArray) Bytes() []byte {
	fsl := a.Storage().(*array.FixedSizeList)
	values := fsl.ListValues().Data()
	elemBytes := values.DataType().(arrow.FixedWidthDataType).BitWidth() / 8
	start, _ := fsl.ValueOffsets(0) // counts the list array's own offset
	first := (int(start) + values.Offset()) * elemBytes
	buf := values.Buffers()[1]
	if buf == nil || a.Len() == 0 {
		return nil
	}
	return buf.Bytes()[first : first+a.Len()*a.TensorType().BytesPerRow()]
}

// Float32s is the values of all rows as float32, for a float32 tensor; nil otherwise.
func (a *TensorArray) Float32s() []float32 {
	if a.TensorType().ValueType().ID() != arrow.FLOAT32 {
		return nil
	}
	return arrow.Float32Traits.CastFromBytes(a.Bytes())
}

var _ array.ExtensionArray = (*TensorArray)(nil)
