package schema

import (
	"bytes"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestSerializeIsTheCanonicalJSON(t *testing.T) {
	tt, err := NewTensorType(arrow.PrimitiveTypes.Uint8, 224, 224, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Byte for byte what pyarrow writes for pa.fixed_shape_tensor(pa.uint8(), [224, 224, 3]).
	if got := tt.Serialize(); got != `{"shape":[224,224,3]}` {
		t.Fatalf("metadata %s", got)
	}
	if tt.ExtensionName() != "arrow.fixed_shape_tensor" {
		t.Fatalf("name %s", tt.ExtensionName())
	}
	if want := arrow.FixedSizeListOf(224*224*3, arrow.PrimitiveTypes.Uint8); !arrow.TypeEqual(tt.StorageType(), want) {
		t.Fatalf("storage %s, want %s", tt.StorageType(), want)
	}
}

func TestDeserializeReadsOptionalKeys(t *testing.T) {
	storage := arrow.FixedSizeListOf(6, arrow.PrimitiveTypes.Float32)
	ext, err := (&TensorType{}).Deserialize(storage, `{"shape":[2,3],"dim_names":["C","H"],"permutation":[1,0]}`)
	if err != nil {
		t.Fatal(err)
	}
	tt := ext.(*TensorType)
	if !slices.Equal(tt.Shape(), []int{2, 3}) || !slices.Equal(tt.DimNames(), []string{"C", "H"}) || !slices.Equal(tt.Permutation(), []int{1, 0}) {
		t.Fatalf("got %s", tt)
	}
	if tt.Serialize() != `{"shape":[2,3],"dim_names":["C","H"],"permutation":[1,0]}` {
		t.Fatalf("re-serialized as %s", tt.Serialize())
	}
	if tt.BytesPerRow() != 24 {
		t.Fatalf("bytes per row %d", tt.BytesPerRow())
	}
}

func TestDeserializeRejectsBadMetadata(t *testing.T) {
	u8x6 := arrow.FixedSizeListOf(6, arrow.PrimitiveTypes.Uint8)
	for _, tc := range []struct {
		storage arrow.DataType
		meta    string
	}{
		{u8x6, `{"shape":[2,2]}`}, // 4 values in lists of 6
		{u8x6, `{}`},              // no shape
		{u8x6, `not json`},        // not JSON
		{u8x6, `{"shape":[2,3],"permutation":[0,0]}`}, // not a permutation
		{u8x6, `{"shape":[2,3],"dim_names":["x"]}`},   // one name for two dims
		{u8x6, `{"shape":[-2,-3]}`},                   // negative dims
		{arrow.ListOf(arrow.PrimitiveTypes.Uint8), `{"shape":[6]}`},
		{arrow.FixedSizeListOf(1, arrow.BinaryTypes.String), `{"shape":[1]}`},
	} {
		if _, err := (&TensorType{}).Deserialize(tc.storage, tc.meta); err == nil {
			t.Errorf("storage %s with %s: no error", tc.storage, tc.meta)
		}
	}
}

func TestExtensionEquals(t *testing.T) {
	a, _ := NewTensorType(arrow.PrimitiveTypes.Uint8, 2, 3)
	b, _ := NewTensorType(arrow.PrimitiveTypes.Uint8, 2, 3)
	c, _ := NewTensorType(arrow.PrimitiveTypes.Uint8, 3, 2)
	d, _ := NewTensorType(arrow.PrimitiveTypes.Float32, 2, 3)
	if !a.ExtensionEquals(b) || a.ExtensionEquals(c) || a.ExtensionEquals(d) {
		t.Fatal("ExtensionEquals compares the wrong things")
	}
}

// tensorColumn builds a uint8 tensor column of rows [2,3] tensors whose bytes count up from 0.
func tensorColumn(t *testing.T, mem memory.Allocator, rows int) *TensorArray {
	t.Helper()
	tt, err := NewTensorType(arrow.PrimitiveTypes.Uint8, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	bld := array.NewFixedSizeListBuilderWithField(mem, 6, tt.StorageType().(*arrow.FixedSizeListType).ElemField())
	defer bld.Release()
	vals := bld.ValueBuilder().(*array.Uint8Builder)
	for i := range rows * 6 {
		if i%6 == 0 {
			bld.Append(true)
		}
		vals.Append(uint8(i))
	}
	storage := bld.NewArray()
	defer storage.Release()
	return array.NewExtensionArrayWithStorage(tt, storage).(*TensorArray)
}

func TestRowBytesAreViewsIntoTheBuffer(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	col := tensorColumn(t, mem, 4)
	defer col.Release()
	if got := col.RowBytes(2); !bytes.Equal(got, []byte{12, 13, 14, 15, 16, 17}) {
		t.Fatalf("row 2 = %v", got)
	}
	col.RowBytes(1)[0] = 99 // shares memory with the column
	if col.Bytes()[6] != 99 {
		t.Fatal("RowBytes copied")
	}
	// A slice starts at its own first row.
	sl := array.NewSlice(col, 2, 4).(*TensorArray)
	defer sl.Release()
	if got := sl.Bytes(); len(got) != 12 || got[0] != 12 || got[11] != 23 {
		t.Fatalf("slice bytes %v", got)
	}
	if got := sl.RowBytes(1); got[0] != 18 {
		t.Fatalf("slice row 1 = %v", got)
	}
}

func TestIPCRoundTripKeepsTheType(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	col := tensorColumn(t, mem, 3)
	defer col.Release()
	sc := arrow.NewSchema([]arrow.Field{{Name: "q", Type: col.DataType()}},
		ptr(arrow.NewMetadata([]string{MetaVersion}, []string{Version})))
	rec := array.NewRecordBatch(sc, []arrow.Array{col}, 3)
	defer rec.Release()

	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(sc), ipc.WithAllocator(mem))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := ipc.NewReader(&buf, ipc.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Next() {
		t.Fatalf("no batch read back: %v", r.Err())
	}
	got := r.RecordBatch()
	if err := CheckVersion(got.Schema()); err != nil {
		t.Fatal(err)
	}
	data, shape, err := Uint8Tensor(got, "q")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shape, []int{3, 2, 3}) || !bytes.Equal(data, col.Bytes()) {
		t.Fatalf("read back shape %v bytes %v, want [3 2 3] %v", shape, data, col.Bytes())
	}
	if !arrow.TypeEqual(got.Column(0).DataType(), col.DataType()) {
		t.Fatalf("type %s, want %s", got.Column(0).DataType(), col.DataType())
	}
}

func TestCheckVersion(t *testing.T) {
	if CheckVersion(arrow.NewSchema(nil, nil)) == nil {
		t.Fatal("a schema without version passed")
	}
	md := arrow.NewMetadata([]string{MetaVersion}, []string{"2"})
	if CheckVersion(arrow.NewSchema(nil, &md)) == nil {
		t.Fatal("version 2 passed")
	}
}

func ptr[T any](v T) *T { return &v }
