// Package batchtest builds synthetic batches in the layout of docs/arrow-schema.md, for the
// transport tests, benchmarks and the producer the Python checks read from. The view columns
// are plain FixedSizeList<uint8> (the storage of arrow.fixed_shape_tensor), and every byte is
// a function of the sample index, so a reader in any language can check what it got:
//
//	pixel byte j of view column v of the sample with index i = (7*i + 13*v + j) mod 251
package batchtest

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Shape describes the batches to build.
type Shape struct {
	Rows          int      // samples per batch
	Height, Width int      // of every view
	Groups        []string // view columns, one view each; default q, k
}

func (s Shape) groups() []string {
	if len(s.Groups) == 0 {
		return []string{"q", "k"}
	}
	return s.Groups
}

// ViewBytes is the size of one view.
func (s Shape) ViewBytes() int { return s.Height * s.Width * 3 }

// Schema is the batches' schema, with the metadata the pipeline sets.
func (s Shape) Schema() *arrow.Schema {
	var fields []arrow.Field
	for _, g := range s.groups() {
		fields = append(fields, arrow.Field{Name: g, Type: arrow.FixedSizeListOf(int32(s.ViewBytes()), arrow.PrimitiveTypes.Uint8)})
	}
	fields = append(fields,
		arrow.Field{Name: "label", Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: "key", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "index", Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: "epoch", Type: arrow.PrimitiveTypes.Int32},
	)
	md := arrow.NewMetadata([]string{"pipeline.schema_version", "pipeline.recipe"}, []string{"1", "batchtest"})
	return arrow.NewSchema(fields, &md)
}

// Pixel is the value of byte j of view column v of the sample with the given index.
func Pixel(index int64, v, j int) byte { return byte((7*index + 13*int64(v) + int64(j)) % 251) }

// Label is the synthetic label of a sample.
func Label(index int64) int32 { return int32(index % 1000) }

// Batch builds batch number b: rows b*Rows .. (b+1)*Rows-1, allocated from mem.
func Batch(mem memory.Allocator, s Shape, b int) arrow.RecordBatch {
	schema := s.Schema()
	first := int64(b) * int64(s.Rows)
	n := s.ViewBytes()
	var cols []arrow.Array
	for v := range s.groups() {
		pix := memory.NewResizableBuffer(mem)
		pix.Resize(s.Rows * n)
		buf := pix.Bytes()
		for r := 0; r < s.Rows; r++ {
			fillView(buf[r*n:(r+1)*n], first+int64(r), v)
		}
		values := array.NewData(arrow.PrimitiveTypes.Uint8, s.Rows*n, []*memory.Buffer{nil, pix}, nil, 0, 0)
		list := array.NewData(schema.Field(v).Type, s.Rows, []*memory.Buffer{nil}, []arrow.ArrayData{values}, 0, 0)
		cols = append(cols, array.MakeFromData(list))
		list.Release()
		values.Release()
		pix.Release()
	}
	labels := array.NewInt32Builder(mem)
	keys := array.NewStringBuilder(mem)
	index := array.NewInt64Builder(mem)
	epoch := array.NewInt32Builder(mem)
	for r := 0; r < s.Rows; r++ {
		i := first + int64(r)
		labels.Append(Label(i))
		keys.Append(fmt.Sprintf("%06d", i))
		index.Append(i)
		epoch.Append(0)
	}
	for _, bld := range []array.Builder{labels, keys, index, epoch} {
		cols = append(cols, bld.NewArray())
		bld.Release()
	}
	rec := array.NewRecordBatch(schema, cols, int64(s.Rows))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// fillView writes view v of sample index into dst; a 251-byte period lets it copy doubling.
func fillView(dst []byte, index int64, v int) {
	k := min(len(dst), 251)
	for j := 0; j < k; j++ {
		dst[j] = Pixel(index, v, j)
	}
	for filled := k; filled < len(dst); filled *= 2 {
		copy(dst[filled:], dst[:filled])
	}
}

// Check reports the first way rec differs from what Batch(_, s, b) builds.
func Check(rec arrow.RecordBatch, s Shape, b int) error {
	if int(rec.NumRows()) != s.Rows {
		return fmt.Errorf("batch %d: %d rows, want %d", b, rec.NumRows(), s.Rows)
	}
	if !rec.Schema().Equal(s.Schema()) {
		return fmt.Errorf("batch %d: schema %s, want %s", b, rec.Schema(), s.Schema())
	}
	groups := len(s.groups())
	index := rec.Column(groups + 2).(*array.Int64)
	labels := rec.Column(groups).(*array.Int32)
	keys := rec.Column(groups + 1).(*array.String)
	first := int64(b) * int64(s.Rows)
	n := s.ViewBytes()
	want := make([]byte, n)
	for r := 0; r < s.Rows; r++ {
		i := first + int64(r)
		if index.Value(r) != i || labels.Value(r) != Label(i) || keys.Value(r) != fmt.Sprintf("%06d", i) {
			return fmt.Errorf("batch %d row %d: index %d label %d key %q, want index %d", b, r, index.Value(r), labels.Value(r), keys.Value(r), i)
		}
		for v := 0; v < groups; v++ {
			got := rec.Column(v).(*array.FixedSizeList).ListValues().(*array.Uint8).Uint8Values()[r*n : (r+1)*n]
			fillView(want, i, v)
			if string(got) != string(want) {
				return fmt.Errorf("batch %d row %d: view column %s differs", b, r, s.groups()[v])
			}
		}
	}
	return nil
}

// BatchOf is the batch number a record holds, read from its first index.
func BatchOf(rec arrow.RecordBatch, s Shape) int {
	idx := rec.Column(len(s.groups()) + 2).(*array.Int64).Value(0)
	return int(idx / int64(s.Rows))
}

// ParseShape reads "ROWSxHxW" (e.g. "256x224x224"), for producers configured by environment.
func ParseShape(text string) (Shape, error) {
	parts := strings.Split(text, "x")
	var v [3]int
	for i := range v {
		if len(parts) != 3 {
			break
		}
		n, err := strconv.Atoi(parts[i])
		if err != nil || n <= 0 {
			break
		}
		v[i] = n
	}
	if v[2] == 0 {
		return Shape{}, fmt.Errorf("shape %q: want ROWSxHEIGHTxWIDTH, like 256x224x224", text)
	}
	return Shape{Rows: v[0], Height: v[1], Width: v[2]}, nil
}

// LeakCheck returns a function that fails t if more goroutines run than when LeakCheck was
// called, once those that are ending have had a moment to end. Defer it first in a test.
func LeakCheck(t testing.TB) func() {
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		var now int
		for wait := time.Millisecond; wait < 2*time.Second; wait *= 2 {
			if now = runtime.NumGoroutine(); now <= before {
				return
			}
			time.Sleep(wait)
		}
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left running, %d before:\n%s", now, before, buf[:runtime.Stack(buf, true)])
	}
}
