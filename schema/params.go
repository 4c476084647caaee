package schema

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"pipeline/pipeline"
)

// ViewParamsType is the Arrow type of one view's sampled parameters (pipeline.ViewParams): the
// crop box, the output size, the color jitter (null when it was not applied), grayscale, the
// blur sigma (null when not blurred), flip and solarize.
var ViewParamsType = arrow.StructOf(
	arrow.Field{Name: "crop", Type: arrow.StructOf(
		arrow.Field{Name: "top", Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: "left", Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: "height", Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: "width", Type: arrow.PrimitiveTypes.Int32},
	)},
	arrow.Field{Name: "size", Type: arrow.StructOf(
		arrow.Field{Name: "height", Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: "width", Type: arrow.PrimitiveTypes.Int32},
	)},
	arrow.Field{Name: "jitter", Nullable: true, Type: arrow.StructOf(
		arrow.Field{Name: "order", Type: arrow.ListOf(arrow.BinaryTypes.String)},
		arrow.Field{Name: "brightness", Type: arrow.PrimitiveTypes.Float64},
		arrow.Field{Name: "contrast", Type: arrow.PrimitiveTypes.Float64},
		arrow.Field{Name: "saturation", Type: arrow.PrimitiveTypes.Float64},
		arrow.Field{Name: "hue", Type: arrow.PrimitiveTypes.Float64},
	)},
	arrow.Field{Name: "grayscale", Type: arrow.FixedWidthTypes.Boolean},
	arrow.Field{Name: "blur_sigma", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	arrow.Field{Name: "flip", Type: arrow.FixedWidthTypes.Boolean},
	arrow.Field{Name: "solarize", Type: arrow.FixedWidthTypes.Boolean},
)

// ParamsType is the type of the params column: a struct with one field per view group, each a
// list of that group's views' parameters in view order.
func ParamsType(groups []string) arrow.DataType {
	fields := make([]arrow.Field, len(groups))
	for i, g := range groups {
		fields[i] = arrow.Field{Name: g, Type: arrow.ListOf(ViewParamsType)}
	}
	return arrow.StructOf(fields...)
}

// AppendViewParams appends one view's parameters to a builder of ViewParamsType.
func AppendViewParams(b *array.StructBuilder, v pipeline.ViewParams) {
	b.Append(true)
	crop := b.FieldBuilder(0).(*array.StructBuilder)
	crop.Append(true)
	for i, x := range []int{v.Crop.Top, v.Crop.Left, v.Crop.Height, v.Crop.Width} {
		crop.FieldBuilder(i).(*array.Int32Builder).Append(int32(x))
	}
	size := b.FieldBuilder(1).(*array.StructBuilder)
	size.Append(true)
	size.FieldBuilder(0).(*array.Int32Builder).Append(int32(v.Size[0]))
	size.FieldBuilder(1).(*array.Int32Builder).Append(int32(v.Size[1]))
	jit := b.FieldBuilder(2).(*array.StructBuilder)
	if v.Jitter == nil {
		jit.AppendNull()
	} else {
		jit.Append(true)
		order := jit.FieldBuilder(0).(*array.ListBuilder)
		order.Append(true)
		for _, op := range v.Jitter.Order {
			order.ValueBuilder().(*array.StringBuilder).Append(op)
		}
		for i, f := range []float64{v.Jitter.Brightness, v.Jitter.Contrast, v.Jitter.Saturation, v.Jitter.Hue} {
			jit.FieldBuilder(1 + i).(*array.Float64Builder).Append(f)
		}
	}
	b.FieldBuilder(3).(*array.BooleanBuilder).Append(v.Grayscale)
	if v.BlurSigma == nil {
		b.FieldBuilder(4).(*array.Float64Builder).AppendNull()
	} else {
		b.FieldBuilder(4).(*array.Float64Builder).Append(*v.BlurSigma)
	}
	b.FieldBuilder(5).(*array.BooleanBuilder).Append(v.Flip)
	b.FieldBuilder(6).(*array.BooleanBuilder).Append(v.Solarize)
}

// ViewParams reads back the parameters of every view of one group in one row of a batch.
func ViewParams(rec arrow.RecordBatch, group string, row int) ([]pipeline.ViewParams, error) {
	idx := rec.Schema().FieldIndices(ColParams)
	if len(idx) == 0 {
		return nil, fmt.Errorf("batch has no %s column (batch.keep_params)", ColParams)
	}
	col, ok := rec.Column(idx[0]).(*array.Struct)
	if !ok {
		return nil, fmt.Errorf("column %s is %s, not a struct", ColParams, rec.Column(idx[0]).DataType())
	}
	fi, ok := col.DataType().(*arrow.StructType).FieldIdx(group)
	if !ok {
		return nil, fmt.Errorf("column %s has no group %q", ColParams, group)
	}
	list := col.Field(fi).(*array.List)
	views := list.ListValues().(*array.Struct)
	start, end := list.ValueOffsets(row)
	crop := views.Field(0).(*array.Struct)
	size := views.Field(1).(*array.Struct)
	jit := views.Field(2).(*array.Struct)
	i32 := func(s *array.Struct, f, i int) int { return int(s.Field(f).(*array.Int32).Value(i)) }
	var out []pipeline.ViewParams
	for i := int(start); i < int(end); i++ {
		v := pipeline.ViewParams{
			Crop:      pipeline.Crop{Top: i32(crop, 0, i), Left: i32(crop, 1, i), Height: i32(crop, 2, i), Width: i32(crop, 3, i)},
			Size:      [2]int{i32(size, 0, i), i32(size, 1, i)},
			Grayscale: views.Field(3).(*array.Boolean).Value(i),
			Flip:      views.Field(5).(*array.Boolean).Value(i),
			Solarize:  views.Field(6).(*array.Boolean).Value(i),
		}
		if jit.IsValid(i) {
			order := jit.Field(0).(*array.List)
			names := order.ListValues().(*array.String)
			os, oe := order.ValueOffsets(i)
			j := &pipeline.Jitter{}
			for k := os; k < oe; k++ {
				j.Order = append(j.Order, names.Value(int(k)))
			}
			f64 := func(f int) float64 { return jit.Field(f).(*array.Float64).Value(i) }
			j.Brightness, j.Contrast, j.Saturation, j.Hue = f64(1), f64(2), f64(3), f64(4)
			v.Jitter = j
		}
		if blur := views.Field(4).(*array.Float64); blur.IsValid(i) {
			s := blur.Value(i)
			v.BlurSigma = &s
		}
		out = append(out, v)
	}
	return out, nil
}
