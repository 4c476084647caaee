package batch

import (
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
)

// chargedRecord is a record batch whose last Release runs onLast exactly once: the batcher
// uses it to give the batch's bytes back to the memory budget when the sink is done.
// Slices and column swaps made from it hold a reference of their own, so the bytes stay
// charged while any of them lives.
type chargedRecord struct {
	arrow.RecordBatch
	refs   atomic.Int64
	onLast func()
}

func newChargedRecord(rec arrow.RecordBatch, onLast func()) *chargedRecord {
	r := &chargedRecord{RecordBatch: rec, onLast: onLast}
	r.refs.Store(1)
	return r
}

func (r *chargedRecord) Retain() {
	r.refs.Add(1)
	r.RecordBatch.Retain()
}

func (r *chargedRecord) Release() {
	n := r.refs.Add(-1)
	if n < 0 {
		panic("batch: record released more times than retained")
	}
	r.RecordBatch.Release()
	if n == 0 {
		r.onLast()
	}
}

func (r *chargedRecord) NewSlice(i, j int64) arrow.RecordBatch {
	r.Retain()
	return newChargedRecord(r.RecordBatch.NewSlice(i, j), r.Release)
}

func (r *chargedRecord) SetColumn(i int, col arrow.Array) (arrow.RecordBatch, error) {
	out, err := r.RecordBatch.SetColumn(i, col)
	if err != nil {
		return nil, err
	}
	r.Retain()
	return newChargedRecord(out, r.Release), nil
}
