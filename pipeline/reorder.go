package pipeline

import "fmt"

// Reorder puts items back in Seq order after parallel stages have shuffled them. It holds at
// most the items in flight between the source and its caller, which the bounded queues limit.
// It owns the items it holds back: Close releases them. Use it from one goroutine.
type Reorder struct {
	next    int64
	pending map[int64]*Item
}

// Push adds one item and appends the items now ready, in Seq order, to ready. An item whose Seq
// was already pushed is released and reported: it means a stage emitted a sample twice.
func (r *Reorder) Push(it *Item, ready []*Item) ([]*Item, error) {
	if _, dup := r.pending[it.Seq]; dup || it.Seq < r.next {
		it.Release()
		return ready, fmt.Errorf("%s: seq %d arrived twice", it.Meta, it.Seq)
	}
	if it.Seq != r.next {
		if r.pending == nil {
			r.pending = map[int64]*Item{}
		}
		r.pending[it.Seq] = it
		return ready, nil
	}
	ready = append(ready, it)
	r.next++
	for {
		nx, ok := r.pending[r.next]
		if !ok {
			return ready, nil
		}
		delete(r.pending, r.next)
		ready = append(ready, nx)
		r.next++
	}
}

// Pending is the number of items held back waiting for an earlier one.
func (r *Reorder) Pending() int { return len(r.pending) }

// Finish reports items still held when the stream has ended: the item they wait for was lost
// upstream.
func (r *Reorder) Finish() error {
	if len(r.pending) == 0 {
		return nil
	}
	return fmt.Errorf("%d items wait for seq %d, which never arrived (lost upstream)", len(r.pending), r.next)
}

// Close releases the items still held back. It is safe to call more than once.
func (r *Reorder) Close() {
	for seq, it := range r.pending {
		it.Release()
		delete(r.pending, seq)
	}
}
