// Package schema is the Arrow batch contract of docs/arrow-schema.md, shared by the batcher
// that writes batches and the consumers that read them: the canonical arrow.fixed_shape_tensor
// extension type (arrow-go does not ship one), the column and metadata names, and zero-copy
// readers for the tensor columns.
package schema

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// TensorExtensionName is the canonical extension name, as written by pyarrow and Arrow C++.
const TensorExtensionName = "arrow.fixed_shape_tensor"

// TensorType is the canonical fixed-shape tensor extension type: every row is one dense
// tensor of Shape, stored row-major as a FixedSizeList of prod(Shape) values.
//
// The serialized metadata is the JSON object of the Arrow canonical extension spec:
// {"shape":[...]} with the optional "dim_names" and "permutation" keys.
type TensorType struct {
	arrow.ExtensionBase
	meta tensorMeta
}

type tensorMeta struct {
	Shape       []int    `json:"shape"`
	DimNames    []string `json:"dim_names,omitempty"`
	Permutation []int    `json:"permutation,omitempty"`
}

func init() {
	proto := &TensorType{
		ExtensionBase: arrow.ExtensionBase{Storage: arrow.FixedSizeListOf(1, arrow.PrimitiveTypes.Uint8)},
		meta:          tensorMeta{Shape: []int{1}},
	}
	if err := arrow.RegisterExtensionType(proto); err != nil {
		panic(fmt.Sprintf("registering %s: %v (is another implementation registered?)", TensorExtensionName, err))
	}
}

// NewTensorType returns the tensor type of the given value type and shape, e.g.
// NewTensorType(arrow.PrimitiveTypes.Uint8, 224, 224, 3).
func NewTensorType(value arrow.DataType, shape ...int) (*TensorType, error) {
	return newTensorType(value, tensorMeta{Shape: slices.Clone(shape)})
}

func newTensorType(value arrow.DataType, m tensorMeta) (*TensorType, error) {
	if _, ok := value.(arrow.FixedWidthDataType); !ok || value.ID() == arrow.BOOL {
		return nil, fmt.Errorf("%s: value type %s is not a fixed-width numeric type", TensorExtensionName, value)
	}
	if len(m.Shape) == 0 {
		return nil, fmt.Errorf("%s: empty shape", TensorExtensionName)
	}
	size := 1
	for _, d := range m.Shape {
		if d <= 0 {
			return nil, fmt.Errorf("%s: shape %v has a dimension <= 0", TensorExtensionName, m.Shape)
		}
		size *= d
	}
	if m.DimNames != nil && len(m.DimNames) != len(m.Shape) {
		return nil, fmt.Errorf("%s: %d dim_names for a %d-dimensional shape", TensorExtensionName, len(m.DimNames), len(m.Shape))
	}
	if m.Permutation != nil {
		seen := make([]bool, len(m.Shape))
		if len(m.Permutation) != len(m.Shape) {
			return nil, fmt.Errorf("%s: permutation %v does not match shape %v", TensorExtensionName, m.Permutation, m.Shape)
		}
		for _, p := range m.Permutation {
			if p < 0 || p >= len(seen) || seen[p] {
				return nil, fmt.Errorf("%s: %v is not a permutation", TensorExtensionName, m.Permutation)
			}
			seen[p] = true
		}
	}
	return &TensorType{
		ExtensionBase: arrow.ExtensionBase{Storage: arrow.FixedSizeListOf(int32(size), value)},
		meta:          m,
	}, nil
}

// Shape is the shape of one row's tensor.
func (t *TensorType) Shape() []int { return slices.Clone(t.meta.Shape) }

// DimNames are the optional dimension names; nil when absent.
func (t *TensorType) DimNames() []string { return slices.Clone(t.meta.DimNames) }

// Permutation is the optional physical-to-logical dimension order; nil when absent (row-major).
func (t *TensorType) Permutation() []int { return slices.Clone(t.meta.Permutation) }

// ValueType is the type of one tensor element (uint8 for pixels, float32 when normalised).
func (t *TensorType) ValueType() arrow.DataType {
	return t.Storage.(*arrow.FixedSizeListType).Elem()
}

// ElemsPerRow is prod(Shape), the number of values in one row.
func (t *TensorType) ElemsPerRow() int { return int(t.Storage.(*arrow.FixedSizeListType).Len()) }

// BytesPerRow is the size of one row's tensor in bytes.
func (t *TensorType) BytesPerRow() int {
	return t.ElemsPerRow() * t.ValueType().(arrow.FixedWidthDataType).BitWidth() / 8
}

// ArrayType makes arrays of this type TensorArrays.
func (*TensorType) ArrayType() reflect.Type { return reflect.TypeOf(TensorArray{}) }

// ExtensionName is arrow.fixed_shape_tensor.
func (*TensorType) ExtensionName() string { return TensorExtensionName }

func (t *TensorType) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "extension<%s[value_type=%s, shape=%v", TensorExtensionName, t.ValueType(), t.meta.Shape)
	if t.meta.DimNames != nil {
		fmt.Fprintf(&b, ", dim_names=%v", t.meta.DimNames)
	}
	if t.meta.Permutation != nil {
		fmt.Fprintf(&b, ", permutation=%v", t.meta.Permutation)
	}
	b.WriteString("]>")
	return b.String()
}

// Serialize writes the canonical metadata, e.g. {"shape":[224,224,3]}.
func (t *TensorType) Serialize() string {
	out, err := json.Marshal(t.meta)
	if err != nil { // ints and strings always marshal
		panic(err)
	}
	return string(out)
}

// Deserialize rebuilds a tensor type from IPC metadata, checking that the storage is a
// FixedSizeList of prod(shape) fixed-width values.
func (*TensorType) Deserialize(storage arrow.DataType, data string) (arrow.ExtensionType, error) {
	fsl, ok := storage.(*arrow.FixedSizeListType)
	if !ok {
		return nil, fmt.Errorf("%s: storage is %s, want fixed_size_list", TensorExtensionName, storage)
	}
	var m tensorMeta
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return nil, fmt.Errorf("%s: metadata %q: %w", TensorExtensionName, data, err)
	}
	t, err := newTensorType(fsl.Elem(), m)
	if err != nil {
		return nil, err
	}
	if t.ElemsPerRow() != int(fsl.Len()) {
		return nil, fmt.Errorf("%s: shape %v holds %d values but storage lists hold %d",
			TensorExtensionName, m.Shape, t.ElemsPerRow(), fsl.Len())
	}
	// Keep the storage as written (its child field name and nullability) so that
	// ExtensionBase.StorageType matches the arrays read back.
	t.Storage = fsl
	return t, nil
}

// ExtensionEquals compares value type, shape, dim names and permutation; the storage child
// field's name and nullability do not matter.
func (t *TensorType) ExtensionEquals(other arrow.ExtensionType) bool {
	o, ok := other.(*TensorType)
	return ok &&
		arrow.TypeEqual(t.ValueType(), o.ValueType()) &&
		slices.Equal(t.meta.Shape, o.meta.Shape) &&
		slices.Equal(t.meta.DimNames, o.meta.DimNames) &&
		slices.Equal(t.meta.Permutation, o.meta.Permutation)
}

var _ arrow.ExtensionType = (*TensorType)(nil)
