package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/pipeline"
	"pipeline/schema"
)

// MoCo-like groups, small: q and k of one view each, plus a three-view group to cover [V,H,W,3].
var testGroups = []GroupShape{
	{Name: "q", Views: 1, Height: 6, Width: 8},
	{Name: "k", Views: 1, Height: 6, Width: 8},
	{Name: "local", Views: 3, Height: 4, Width: 2},
}

// pixel is the byte every test item holds at position i of view v of group g.
func pixel(index int64, g, v, i int) byte { return byte(int(index)*31 + g*7 + v*13 + i) }

func makeItem(seq int64, groups []GroupShape, withParams bool) *pipeline.Item {
	it := &pipeline.Item{Meta: pipeline.Meta{
		Key: fmt.Sprintf("%06d", seq), Shard: "shard-0.tar", Index: 1000 + seq,
		Epoch: 2, Label: int32(seq % 7), Seq: seq,
	}}
	for g, gs := range groups {
		vg := pipeline.ViewGroup{Name: gs.Name}
		for v := range gs.Views {
			pix := make([]uint8, gs.viewPixels())
			for i := range pix {
				pix[i] = pixel(it.Index, g, v, i)
			}
			vg.Views = append(vg.Views, pipeline.Image{Width: gs.Width, Height: gs.Height, Pix: pix})
			if withParams {
				vg.Params = append(vg.Params, pipeline.ViewParams{Crop: pipeline.Crop{Top: int(seq), Left: v}, Size: [2]int{gs.Height, gs.Width}, Flip: g%2 == 0})
			}
		}
		it.Groups = append(it.Groups, vg)
	}
	return it
}

// harness is a batcher over a checked allocator and a budget account; cleanup closes the
// batcher and asserts that every byte came back to both.
type harness struct {
	b     *Batcher
	mem   *memory.CheckedAllocator
	acct  *pipeline.Account
	drops []*pipeline.SampleError
}

func newHarness(t *testing.T, cfg Config, groups []GroupShape, budget int64) *harness {
	t.Helper()
	h := &harness{mem: memory.NewCheckedAllocator(memory.NewGoAllocator())}
	h.acct = pipeline.NewBudget(pipeline.BudgetSplit{Batches: budget}).Batches
	b, err := New(cfg, groups, h.acct, h.mem)
	if err != nil {
		t.Fatal(err)
	}
	b.OnDrop(func(se *pipeline.SampleError) { h.drops = append(h.drops, se) })
	h.b = b
	t.Cleanup(func() {
		b.Close()
		h.mem.AssertSize(t, 0)
		if n := h.acct.InUse(); n != 0 {
			t.Errorf("batches account holds %d bytes after every record was released", n)
		}
	})
	return h
}

// pushAll pushes items in the given order, then flushes, and returns every batch.
func (h *harness) pushAll(t *testing.T, items []*pipeline.Item) []arrow.RecordBatch {
	t.Helper()
	var out []arrow.RecordBatch
	for _, it := range items {
		rec, err := h.b.Push(context.Background(), it)
		if err != nil {
			t.Fatal(err)
		}
		if rec != nil {
			out = append(out, rec)
		}
	}
	last, err := h.b.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if last != nil {
		out = append(out, last)
	}
	return out
}

func releaseAll(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

// checkRows asserts that rec holds the test items of the given indices, in order.
func checkRows(t *testing.T, rec arrow.RecordBatch, groups []GroupShape, indices []int64) {
	t.Helper()
	if err := rowsError(rec, groups, indices); err != nil {
		t.Fatal(err)
	}
}

func rowsError(rec arrow.RecordBatch, groups []GroupShape, indices []int64) error {
	if err := schema.CheckVersion(rec.Schema()); err != nil {
		return err
	}
	if rec.NumRows() != int64(len(indices)) {
		return fmt.Errorf("batch has %d rows, want %d", rec.NumRows(), len(indices))
	}
	idx := rec.Column(len(groups) + 2).(*array.Int64)
	if got := idx.Int64Values(); !slices.Equal(got, indices) {
		return fmt.Errorf("index column %v, want %v", got, indices)
	}
	keys := rec.Column(len(groups) + 1).(*array.String)
	labels := rec.Column(len(groups)).(*array.Int32)
	epochs := rec.Column(len(groups) + 3).(*array.Int32)
	for row, index := range indices {
		seq := index - 1000
		if keys.Value(row) != fmt.Sprintf("%06d", seq) || labels.Value(row) != int32(seq%7) || epochs.Value(row) != 2 {
			return fmt.Errorf("row %d: key %q label %d epoch %d, want the item of seq %d", row, keys.Value(row), labels.Value(row), epochs.Value(row), seq)
		}
	}
	for g, gs := range groups {
		data, shape, err := schema.Uint8Tensor(rec, gs.Name)
		if err != nil {
			return err
		}
		want := append([]int{len(indices)}, gs.tensorShape()...)
		if !slices.Equal(shape, want) {
			return fmt.Errorf("group %s: shape %v, want %v", gs.Name, shape, want)
		}
		for row, index := range indices {
			for v := range gs.Views {
				view := data[(row*gs.Views+v)*gs.viewPixels():][:gs.viewPixels()]
				for i, got := range view {
					if got != pixel(index, g, v, i) {
						return fmt.Errorf("group %s row %d view %d byte %d = %d, want %d", gs.Name, row, v, i, got, pixel(index, g, v, i))
					}
				}
			}
		}
	}
	return nil
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, 1000+i)
	}
	return out
}

func TestRowsFollowThePushOrder(t *testing.T) {
	h := newHarness(t, Config{Size: 4}, testGroups, 1<<20)
	items := make([]*pipeline.Item, 22)
	for i := range items {
		items[i] = makeItem(int64(i), testGroups, false)
	}
	recs := h.pushAll(t, items)
	defer releaseAll(recs)
	if len(recs) != 6 {
		t.Fatalf("%d batches, want 5 full and 1 partial", len(recs))
	}
	for b, rec := range recs {
		checkRows(t, rec, testGroups, seqRange(int64(b*4), min(int64(b*4+4), 22)))
	}
	if st := h.b.Stats(); st != (Stats{Emitted: 22, Batches: 6}) {
		t.Fatalf("stats %+v", st)
	}
	for i, it := range items {
		if it.Groups != nil {
			t.Fatalf("item %d was not released", i)
		}
	}
}

func TestSkippedItemsAreCountedNotEmitted(t *testing.T) {
	h := newHarness(t, Config{Size: 3}, testGroups, 1<<20)
	var items []*pipeline.Item
	var want []int64
	for i := range int64(10) {
		if i == 1 || i == 4 || i == 5 {
			m := pipeline.Meta{Key: fmt.Sprint(i), Index: 1000 + i, Seq: i}
			items = append(items, &pipeline.Item{Meta: m, Skip: pipeline.Bad(m, pipeline.ReasonCorrupt, errors.New("bad huffman code"))})
			continue
		}
		items = append(items, makeItem(i, testGroups, false))
		want = append(want, 1000+i)
	}
	recs := h.pushAll(t, items)
	defer releaseAll(recs)
	if len(recs) != 3 {
		t.Fatalf("%d batches, want 3 (7 samples by 3)", len(recs))
	}
	checkRows(t, recs[0], testGroups, want[0:3])
	checkRows(t, recs[1], testGroups, want[3:6])
	checkRows(t, recs[2], testGroups, want[6:7])
	if st := h.b.Stats(); st != (Stats{Emitted: 7, Skipped: 3, Batches: 3}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestDropLastReportsThePartialBatch(t *testing.T) {
	h := newHarness(t, Config{Size: 4, DropLast: true}, testGroups, 1<<20)
	var items []*pipeline.Item
	for i := range int64(10) {
		items = append(items, makeItem(i, testGroups, false))
	}
	recs := h.pushAll(t, items)
	defer releaseAll(recs)
	if len(recs) != 2 {
		t.Fatalf("%d batches, want 2", len(recs))
	}
	checkRows(t, recs[1], testGroups, seqRange(4, 8))
	if st := h.b.Stats(); st != (Stats{Emitted: 8, Dropped: 2, Batches: 2}) {
		t.Fatalf("stats %+v", st)
	}
	if len(h.drops) != 2 {
		t.Fatalf("%d drop reports, want 2", len(h.drops))
	}
	for i, se := range h.drops {
		if se.Reason != ReasonPartialBatch || se.Stage != "batch" || se.Meta.Index != 1008+int64(i) {
			t.Fatalf("drop report %d: %v (index %d)", i, se, se.Meta.Index)
		}
	}
}

func TestWithoutDropLastTheLastBatchIsPartial(t *testing.T) {
	h := newHarness(t, Config{Size: 4}, testGroups, 1<<20)
	var items []*pipeline.Item
	for i := range int64(6) {
		items = append(items, makeItem(i, testGroups, false))
	}
	recs := h.pushAll(t, items)
	defer releaseAll(recs)
	if len(recs) != 2 {
		t.Fatalf("%d batches, want 2", len(recs))
	}
	checkRows(t, recs[1], testGroups, seqRange(4, 6))
	if len(h.drops) != 0 || h.b.Stats().Dropped != 0 {
		t.Fatalf("dropped %d samples without drop_last", len(h.drops))
	}
}

func TestNormalizeWritesFloat32(t *testing.T) {
	groups := testGroups[:1]
	h := newHarness(t, Config{Size: 2, Normalize: true}, groups, 1<<20)
	recs := h.pushAll(t, []*pipeline.Item{makeItem(0, groups, false), makeItem(1, groups, false)})
	defer releaseAll(recs)
	if _, _, err := schema.Uint8Tensor(recs[0], "q"); err == nil {
		t.Fatal("Uint8Tensor read a float32 column")
	}
	data, shape, err := schema.Float32Tensor(recs[0], "q")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shape, []int{2, 6, 8, 3}) {
		t.Fatalf("shape %v", shape)
	}
	mean := []float64{0.485, 0.456, 0.406}
	std := []float64{0.229, 0.224, 0.225}
	for row := range 2 {
		for i := range groups[0].viewPixels() {
			px := pixel(int64(1000+row), 0, 0, i)
			want := (float64(px)/255 - mean[i%3]) / std[i%3]
			got := data[row*groups[0].viewPixels()+i]
			if math.Abs(float64(got)-want) > 1e-6 {
				t.Fatalf("row %d value %d: %v from pixel %d, want %v", row, i, got, px, want)
			}
		}
	}
	if v, _ := recs[0].Schema().Metadata().GetValue(schema.MetaNormalize); v == "" {
		t.Fatal("no normalize metadata")
	}
}

func TestParamsColumnHoldsEveryViewByGroup(t *testing.T) {
	h := newHarness(t, Config{Size: 2, KeepParams: true, Recipe: "mocov2"}, testGroups, 1<<20)
	recs := h.pushAll(t, []*pipeline.Item{makeItem(0, testGroups, true), makeItem(1, testGroups, true)})
	defer releaseAll(recs)
	rec := recs[0]
	if r, _ := rec.Schema().Metadata().GetValue(schema.MetaRecipe); r != "mocov2" {
		t.Fatalf("recipe metadata %q", r)
	}
	want := makeItem(1, testGroups, true)
	for g, shape := range testGroups {
		got, err := schema.ViewParams(rec, shape.Name, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want.Groups[g].Params) {
			t.Fatalf("group %s params %+v, want %+v", shape.Name, got, want.Groups[g].Params)
		}
	}
}

// Every field of a view's parameters survives the struct column, nulls included, also
// through an IPC stream.
func TestParamsStructRoundTrip(t *testing.T) {
	sigma := 1.25
	views := []pipeline.ViewParams{
		{Crop: pipeline.Crop{Top: 1, Left: 2, Height: 30, Width: 40}, Size: [2]int{8, 8}, Grayscale: true, Flip: true,
			Jitter:    &pipeline.Jitter{Order: []string{"hue", "contrast", "brightness", "saturation"}, Brightness: 0.7, Contrast: 1.3, Saturation: 0.9, Hue: -0.05},
			BlurSigma: &sigma, Solarize: true},
		{Crop: pipeline.Crop{Top: 5, Left: 6, Height: 7, Width: 8}, Size: [2]int{8, 8}},
	}
	groups := []GroupShape{{Name: "views", Views: 2, Height: 8, Width: 8}}
	h := newHarness(t, Config{Size: 1, KeepParams: true}, groups, 1<<20)
	it := makeItem(0, groups, true)
	it.Groups[0].Params = views
	recs := h.pushAll(t, []*pipeline.Item{it})
	defer releaseAll(recs)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(recs[0].Schema()))
	if err := w.Write(recs[0]); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := ipc.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	got, err := schema.ViewParams(r.RecordBatch(), "views", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, views) {
		t.Fatalf("read back %+v\nwant %+v", got, views)
	}
}

func TestParamsMissingIsAnError(t *testing.T) {
	h := newHarness(t, Config{Size: 2, KeepParams: true}, testGroups, 1<<20)
	if _, err := h.b.Push(context.Background(), makeItem(0, testGroups, false)); err == nil {
		t.Fatal("keep_params accepted an item without params")
	}
}

func TestWrongViewSizeNamesTheSample(t *testing.T) {
	h := newHarness(t, Config{Size: 2}, testGroups, 1<<20)
	it := makeItem(0, testGroups, false)
	it.Groups[1].Views[0].Width = 9
	_, err := h.b.Push(context.Background(), it)
	if err == nil || !containsAll(err.Error(), "shard-0.tar[000000]", `"k"`, "9x6") {
		t.Fatalf("error %v does not name the sample, group and size", err)
	}
}

// The batcher takes items in Seq order (pipeline.Reorder restores it); a gap or a repeat is
// an error that names the sample, and the item is still released.
func TestOutOfOrderPushIsAnError(t *testing.T) {
	h := newHarness(t, Config{Size: 4}, testGroups, 1<<20)
	if _, err := h.b.Push(context.Background(), makeItem(0, testGroups, false)); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int64{2, 0} {
		it := makeItem(seq, testGroups, false)
		_, err := h.b.Push(context.Background(), it)
		if err == nil || !containsAll(err.Error(), fmt.Sprintf("seq %d out of order, want 1", seq), it.Meta.Key) {
			t.Fatalf("seq %d after seq 0: error %v", seq, err)
		}
		if it.Groups != nil {
			t.Fatalf("seq %d was not released", seq)
		}
	}
	// cleanup's Close releases the half-built batch
}

func TestBudgetHoldsEachBatchUntilItsLastRelease(t *testing.T) {
	h := newHarness(t, Config{Size: 2}, testGroups, 1<<20)
	recs := h.pushAll(t, []*pipeline.Item{makeItem(0, testGroups, false), makeItem(1, testGroups, false), makeItem(2, testGroups, false)})
	full, partial := recs[0], recs[1]
	if got, want := h.acct.InUse(), schema.RecordBytes(full)+schema.RecordBytes(partial); got != want {
		t.Fatalf("account holds %d bytes, want the two batches' %d", got, want)
	}
	slice := full.NewSlice(0, 1)
	full.Retain()
	full.Release()
	full.Release()
	if h.acct.InUse() != schema.RecordBytes(full)+schema.RecordBytes(partial) {
		t.Fatal("the charge went back while a slice of the batch lives")
	}
	slice.Release()
	partial.Release()
	if n := h.acct.InUse(); n != 0 {
		t.Fatalf("account holds %d bytes after every release", n)
	}
}

func TestFullBudgetStallsTheNextBatch(t *testing.T) {
	groups := testGroups[:1]
	probe := newHarness(t, Config{Size: 2}, groups, 1<<20)
	oneBatch := probe.b.fullBatchBytes() + 64 // and room for the key strings
	h := newHarness(t, Config{Size: 2}, groups, oneBatch)
	var held []arrow.RecordBatch
	for seq := range int64(2) {
		rec, err := h.b.Push(context.Background(), makeItem(seq, groups, false))
		if err != nil {
			t.Fatal(err)
		}
		if rec != nil {
			held = append(held, rec)
		}
	}
	// The sink holds batch 1, so batch 2 cannot start until it lets go.
	done := make(chan error, 1)
	go func() {
		_, err := h.b.Push(context.Background(), makeItem(2, groups, false))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("batch 2 started while batch 1 held the whole budget (err %v)", err)
	case <-time.After(20 * time.Millisecond):
	}
	releaseAll(held)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("batch 2 still waits after batch 1 was released")
	}
	last, err := h.b.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkRows(t, last, groups, seqRange(2, 3))
	last.Release()
}

func TestCancelWhileWaitingForBudget(t *testing.T) {
	groups := testGroups[:1]
	probe := newHarness(t, Config{Size: 2}, groups, 1<<20)
	h := newHarness(t, Config{Size: 2}, groups, probe.b.fullBatchBytes()+64)
	recs := h.pushAll(t, []*pipeline.Item{makeItem(0, groups, false), makeItem(1, groups, false)})
	defer releaseAll(recs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	it := makeItem(2, groups, false)
	if _, err := h.b.Push(ctx, it); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("push into a full budget: %v, want it to wait until the deadline", err)
	}
	if it.Groups != nil {
		t.Fatal("the item was not released when the push failed")
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// A sink on another goroutine releases batches while the batcher builds the next ones from
// recycled buffers, with a budget of two batches: -race checks the pool and the charge.
func TestConcurrentSinkWithTightBudget(t *testing.T) {
	probe := newHarness(t, Config{Size: 4}, testGroups, 1<<20)
	h := newHarness(t, Config{Size: 4}, testGroups, 2*(probe.b.fullBatchBytes()+64))
	toSink := make(chan arrow.RecordBatch, 1)
	sunk := make(chan error, 1)
	go func() {
		var next int64
		var err error
		for rec := range toSink {
			if err == nil {
				err = rowsError(rec, testGroups, seqRange(next, next+rec.NumRows()))
				next += rec.NumRows()
			}
			rec.Release()
		}
		if err == nil && next != 40 {
			err = fmt.Errorf("sink saw %d samples, want 40", next)
		}
		sunk <- err
	}()
	for seq := range int64(40) {
		rec, err := h.b.Push(context.Background(), makeItem(seq, testGroups, false))
		if err != nil {
			t.Fatal(err)
		}
		if rec != nil {
			toSink <- rec
		}
	}
	close(toSink)
	if err := <-sunk; err != nil {
		t.Fatal(err)
	}
	if h.acct.Peak() > h.acct.Limit() {
		t.Fatalf("peak %d over the limit %d", h.acct.Peak(), h.acct.Limit())
	}
}
