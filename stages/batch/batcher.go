// Package batch folds the pipeline's items into Arrow record batches (docs/arrow-schema.md):
// it takes items in source order (pipeline.Reorder restores it after the parallel stages),
// copies each view straight into its column's buffer, charges every batch to the memory budget
// until the sink releases it, and accounts for every item it gets: emitted, skipped upstream,
// or dropped as the final partial batch.
package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/pipeline"
	"pipeline/schema"
)

// ReasonPartialBatch is the skip reason of samples dropped with the final batch (drop_last).
const ReasonPartialBatch = "partial_batch"

// stageName names the batcher in skip records and errors.
const stageName = "batch"

// Batcher builds record batches from items. Push and Flush are called from one goroutine;
// Stats may be read from any.
type Batcher struct {
	cfg     Config
	groups  []GroupShape
	tensors []*schema.TensorType
	schema  *arrow.Schema
	acct    *pipeline.Account
	pool    *Pool
	lut     [3][256]float32 // uint8 -> normalised float32, per channel
	onDrop  func(*pipeline.SampleError)

	nextSeq int64 // the Seq Push wants next

	cur                 *building // the batch being filled; nil between batches
	label, epoch        *array.Int32Builder
	index               *array.Int64Builder
	key                 *array.StringBuilder
	params              *array.StructBuilder // schema.ParamsType, with keep_params
	closed              bool
	emitted, skipped    atomic.Int64
	dropped, batchCount atomic.Int64
}

// building is the batch being filled.
type building struct {
	tensors  []*memory.Buffer // one per group, sized for cfg.Size rows
	rows     int
	reserved int64           // bytes charged to the account so far
	metas    []pipeline.Meta // kept for drop_last's skip records
}

// Stats counts what the batcher did with the items it got. Every item pushed ends in exactly
// one of Emitted, Skipped or Dropped, or is in the batch being built.
type Stats struct {
	Emitted int64 // samples in emitted batches
	Skipped int64 // items that arrived already skipped by an earlier stage
	Dropped int64 // samples of the final partial batch under drop_last
	Batches int64 // batches emitted
}

// New returns a batcher for views of the given groups, in column order. Batches are charged to
// acct and their buffers come from a pool over alloc (memory.DefaultAllocator when nil).
func New(cfg Config, groups []GroupShape, acct *pipeline.Account, alloc memory.Allocator) (*Batcher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkGroups(groups); err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, fmt.Errorf("batch: no memory budget account")
	}
	b := &Batcher{
		cfg:    cfg,
		groups: append([]GroupShape(nil), groups...),
		acct:   acct,
	}
	value := arrow.DataType(arrow.PrimitiveTypes.Uint8)
	if cfg.Normalize {
		value = arrow.PrimitiveTypes.Float32
		for c := range 3 {
			for v := range 256 {
				// float32 all the way, as torchvision's ToTensor + Normalize compute it.
				b.lut[c][v] = (float32(v)/255 - cfg.Mean[c]) / cfg.Std[c]
			}
		}
	}
	var fields []arrow.Field
	for _, g := range groups {
		tt, err := schema.NewTensorType(value, g.tensorShape()...)
		if err != nil {
			return nil, fmt.Errorf("batch: view group %q: %w", g.Name, err)
		}
		b.tensors = append(b.tensors, tt)
		fields = append(fields, arrow.Field{Name: g.Name, Type: tt})
	}
	fields = append(fields,
		arrow.Field{Name: schema.ColLabel, Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: schema.ColKey, Type: arrow.BinaryTypes.String},
		arrow.Field{Name: schema.ColIndex, Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: schema.ColEpoch, Type: arrow.PrimitiveTypes.Int32},
	)
	if cfg.KeepParams {
		fields = append(fields, arrow.Field{Name: schema.ColParams, Type: schema.ParamsType(groupNames(groups))})
	}
	meta := map[string]string{schema.MetaVersion: schema.Version, schema.MetaRecipe: cfg.Recipe}
	if cfg.Normalize {
		norm, _ := json.Marshal(map[string][]float32{"mean": cfg.Mean, "std": cfg.Std})
		meta[schema.MetaNormalize] = string(norm)
	}
	b.schema = arrow.NewSchema(fields, ptrTo(arrow.MetadataFrom(meta)))

	// Keep up to two batches of idle buffers: enough that a sink holding one batch while the
	// next is built never sends the batcher to the Go heap.
	b.pool = NewPool(alloc, 2*int(b.fullBatchBytes()))
	b.label = array.NewInt32Builder(b.pool)
	b.epoch = array.NewInt32Builder(b.pool)
	b.index = array.NewInt64Builder(b.pool)
	b.key = array.NewStringBuilder(b.pool)
	if cfg.KeepParams {
		b.params = array.NewStructBuilder(b.pool, schema.ParamsType(groupNames(groups)).(*arrow.StructType))
	}
	return b, nil
}

func ptrTo[T any](v T) *T { return &v }

// Schema is the schema of every batch.
func (b *Batcher) Schema() *arrow.Schema { return b.schema }

// OnDrop sets the function told about every sample dropped with the final partial batch
// (drop_last), e.g. a pipeline.SkipLog's Add, so that the run summary lists them.
func (b *Batcher) OnDrop(fn func(*pipeline.SampleError)) { b.onDrop = fn }

// Stats returns the counters; safe to call while the batcher runs.
func (b *Batcher) Stats() Stats {
	return Stats{
		Emitted: b.emitted.Load(), Skipped: b.skipped.Load(),
		Dropped: b.dropped.Load(), Batches: b.batchCount.Load(),
	}
}

// Push takes ownership of it, which must be the next item in Seq order, and returns the batch
// it completed, if any; the caller owns that batch. After an error the batcher is only good
// for Close.
func (b *Batcher) Push(ctx context.Context, it *pipeline.Item) (arrow.RecordBatch, error) {
	defer it.Release()
	if b.closed {
		return nil, fmt.Errorf("batch: Push after Close (%s)", it.Meta)
	}
	if it.Seq != b.nextSeq {
		return nil, fmt.Errorf("batch: %s: seq %d out of order, want %d", it.Meta, it.Seq, b.nextSeq)
	}
	b.nextSeq++
	return b.add(ctx, it)
}

// Flush ends the stream: it returns the final partial batch (nil when there is none or
// drop_last drops it) and reports items still waiting for one that never came.
func (b *Batcher) Flush(ctx context.Context) (arrow.RecordBatch, error) {
	if b.closed {
		return nil, fmt.Errorf("batch: Flush after Close")
	}
	if b.cur == nil {
		return nil, nil
	}
	if b.cfg.DropLast {
		b.dropPartial()
		return nil, nil
	}
	return b.finish(ctx)
}

// Close releases everything the batcher still holds: the batch being built and idle pooled
// buffers. Batches already returned stay valid. Close is
// safe to call more than once and after an error.
func (b *Batcher) Close() {
	if b.closed {
		return
	}
	b.closed = true
	b.discard()
	for _, bld := range b.builders() {
		bld.Release()
	}
	b.pool.Close()
}

// add appends one item as a row; skipped items are only counted.
func (b *Batcher) add(ctx context.Context, it *pipeline.Item) (arrow.RecordBatch, error) {
	if it.Skip != nil {
		b.skipped.Add(1)
		return nil, nil
	}
	if b.cur == nil {
		if err := b.begin(ctx); err != nil {
			return nil, err
		}
	}
	row := b.cur.rows
	for g, shape := range b.groups {
		vg := findGroup(it.Groups, shape.Name)
		if vg == nil {
			return nil, fmt.Errorf("batch: %s: no view group %q", it.Meta, shape.Name)
		}
		if len(vg.Views) != shape.Views {
			return nil, fmt.Errorf("batch: %s: group %q has %d views, want %d", it.Meta, shape.Name, len(vg.Views), shape.Views)
		}
		for v, view := range vg.Views {
			if view.Width != shape.Width || view.Height != shape.Height || len(view.Pix) != shape.viewPixels() {
				return nil, fmt.Errorf("batch: %s: group %q view %d is %dx%d (%d bytes), want %dx%d",
					it.Meta, shape.Name, v, view.Width, view.Height, len(view.Pix), shape.Width, shape.Height)
			}
			b.putView(g, (row*shape.Views+v)*shape.viewPixels(), view.Pix)
		}
		if b.cfg.KeepParams {
			if len(vg.Params) != len(vg.Views) {
				return nil, fmt.Errorf("batch: %s: group %q has %d params for %d views (batch.keep_params needs the augment stage to keep them)",
					it.Meta, shape.Name, len(vg.Params), len(vg.Views))
			}
		}
	}
	if b.cfg.KeepParams {
		b.params.Append(true)
		for g, shape := range b.groups {
			list := b.params.FieldBuilder(g).(*array.ListBuilder)
			list.Append(true)
			for _, p := range findGroup(it.Groups, shape.Name).Params {
				schema.AppendViewParams(list.ValueBuilder().(*array.StructBuilder), p)
			}
		}
	}
	b.label.Append(it.Label)
	b.key.Append(it.Key)
	b.index.Append(it.Index)
	b.epoch.Append(int32(it.Epoch))
	if b.cfg.DropLast {
		b.cur.metas = append(b.cur.metas, it.Meta)
	}
	b.cur.rows++
	if b.cur.rows < b.cfg.Size {
		return nil, nil
	}
	return b.finish(ctx)
}

// builders are the builders of the fixed columns.
func (b *Batcher) builders() []array.Builder {
	out := []array.Builder{b.label, b.key, b.index, b.epoch}
	if b.params != nil {
		out = append(out, b.params)
	}
	return out
}

func groupNames(groups []GroupShape) []string {
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.Name
	}
	return names
}

func findGroup(groups []pipeline.ViewGroup, name string) *pipeline.ViewGroup {
	for i := range groups {
		if groups[i].Name == name {
			return &groups[i]
		}
	}
	return nil
}

// putView writes one view's pixels at element offset off of group g's column.
func (b *Batcher) putView(g, off int, pix []uint8) {
	buf := b.cur.tensors[g].Bytes()
	if !b.cfg.Normalize {
		copy(buf[off:], pix)
		return
	}
	dst := arrow.Float32Traits.CastFromBytes(buf)[off : off+len(pix)]
	r, gr, bl := &b.lut[0], &b.lut[1], &b.lut[2]
	for i := 0; i+2 < len(pix); i += 3 {
		dst[i] = r[pix[i]]
		dst[i+1] = gr[pix[i+1]]
		dst[i+2] = bl[pix[i+2]]
	}
}

// fullBatchBytes is what a full batch holds apart from the string data of key and params.
func (b *Batcher) fullBatchBytes() int64 {
	n := int64(b.cfg.Size)
	total := n * rowTensorBytes(b.cfg, b.groups)
	total += n * (4 + 8 + 4) // label, index, epoch
	total += (n + 1) * 4     // key offsets
	if b.cfg.KeepParams {
		total += (n + 1) * 4 // params offsets
	}
	return total
}

// begin charges a full batch to the budget (waiting while the budget is spent: backpressure)
// and takes its tensor buffers from the pool.
func (b *Batcher) begin(ctx context.Context) error {
	need := b.fullBatchBytes()
	if err := b.acct.Reserve(ctx, need); err != nil {
		return fmt.Errorf("batch: memory for batch %d: %w", b.batchCount.Load()+1, err)
	}
	cur := &building{reserved: need}
	for _, t := range b.tensors {
		buf := memory.NewResizableBuffer(b.pool)
		buf.Resize(b.cfg.Size * t.BytesPerRow())
		cur.tensors = append(cur.tensors, buf)
	}
	b.label.Reserve(b.cfg.Size)
	b.epoch.Reserve(b.cfg.Size)
	b.index.Reserve(b.cfg.Size)
	b.key.Reserve(b.cfg.Size)
	if b.params != nil {
		b.params.Reserve(b.cfg.Size)
	}
	b.cur = cur
	return nil
}

// finish turns the batch being built into a record charged to the budget until its last
// Release. The charge is adjusted from the estimate taken in begin to the record's bytes.
func (b *Batcher) finish(ctx context.Context) (arrow.RecordBatch, error) {
	cur := b.cur
	b.cur = nil
	rows := cur.rows
	cols := make([]arrow.Array, 0, len(b.schema.Fields()))
	for g, t := range b.tensors {
		buf := cur.tensors[g]
		buf.Resize(rows * t.BytesPerRow())
		values := array.NewData(t.ValueType(), rows*t.ElemsPerRow(), []*memory.Buffer{nil, buf}, nil, 0, 0)
		lists := array.NewData(t, rows, []*memory.Buffer{nil}, []arrow.ArrayData{values}, 0, 0)
		cols = append(cols, array.MakeFromData(lists))
		lists.Release()
		values.Release()
		buf.Release()
	}
	cols = append(cols, b.label.NewArray(), b.key.NewArray(), b.index.NewArray(), b.epoch.NewArray())
	if b.params != nil {
		cols = append(cols, b.params.NewArray())
	}
	rec := array.NewRecordBatch(b.schema, cols, int64(rows))
	for _, c := range cols {
		c.Release()
	}

	charge := schema.RecordBytes(rec)
	switch extra := charge - cur.reserved; {
	case extra > 0: // key and params strings
		if err := b.acct.Reserve(ctx, extra); err != nil {
			rec.Release()
			b.acct.Return(cur.reserved)
			return nil, fmt.Errorf("batch: memory for batch %d: %w", b.batchCount.Load()+1, err)
		}
	case extra < 0: // a partial batch
		b.acct.Return(-extra)
	}
	b.emitted.Add(int64(rows))
	b.batchCount.Add(1)
	acct := b.acct
	return newChargedRecord(rec, func() { acct.Return(charge) }), nil
}

// dropPartial drops the batch being built under drop_last, reporting each sample.
func (b *Batcher) dropPartial() {
	cur := b.cur
	b.discard()
	b.dropped.Add(int64(len(cur.metas)))
	if b.onDrop == nil {
		return
	}
	for _, m := range cur.metas {
		b.onDrop(&pipeline.SampleError{
			Meta: m, Stage: stageName, Reason: ReasonPartialBatch,
			Err: fmt.Errorf("drop_last: the final batch holds %d of %d samples", cur.rows, b.cfg.Size),
		})
	}
}

// discard frees the batch being built and gives back its charge.
func (b *Batcher) discard() {
	cur := b.cur
	if cur == nil {
		return
	}
	b.cur = nil
	for _, buf := range cur.tensors {
		buf.Release()
	}
	for _, bld := range b.builders() {
		bld.NewArray().Release() // empties the builder
	}
	b.acct.Return(cur.reserved)
}
