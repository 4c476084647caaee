package pipeline

// Reorder puts items back in Seq order after parallel stages have shuffled them. It holds at
// most the items in flight between the source and its caller, which the bounded queues limit.
type Reorder struct {
	next    int64
	pending map[int64]*Item
}

// Push adds one item and returns the items now ready, in Seq order.
func (r *Reorder) Push(it *Item, ready []*Item) []*Item {
	if it.Seq != r.next {
		if r.pending == nil {
			r.pending = map[int64]*Item{}
		}
		r.pending[it.Seq] = it
		return ready
	}
	ready = append(ready, it)
	r.next++
	for {
		nx, ok := r.pending[r.next]
		if !ok {
			return ready
		}
		delete(r.pending, r.next)
		ready = append(ready, nx)
		r.next++
	}
}

// Pending is the number of items held back waiting for an earlier one.
func (r *Reorder) Pending() int { return len(r.pending) }
