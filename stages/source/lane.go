package source

import (
	"context"
	"io"
	"sync/atomic"

	"pipeline/pipeline"
)

// element is one entry of a reader's stream: a sample, a bad sample, or a bad shard.
type element struct {
	item  *pipeline.Item // a sample; Encoded is nil when ghost
	err   error          // a *pipeline.SampleError or *pipeline.ShardError
	ghost bool           // a sample replayed without its bytes (exact resume)
}

// slot reports whether the element takes a place in the sample stream: samples and bad samples
// do (and count in Position), whole-shard errors do not.
func (e element) slot() bool {
	if e.item != nil {
		return true
	}
	_, ok := pipeline.AsSampleError(e.err)
	return ok
}

func (e element) release() {
	if e.item != nil {
		e.item.Release()
	}
}

// replay tells a lane which of its first elements were already delivered before a resume
// point: its first `count` elements were consumed, and all of them were delivered except those
// whose index is in `buffered` (they sat in the shuffle buffer).
type replay struct {
	count    int64
	buffered map[int64]bool
}

// lane reads its parts one after the other.
type lane struct {
	ds     dataset
	parts  []int
	next   int
	cur    partReader
	alloc  allocator
	seq    int64 // elements yielded so far
	replay replay
	ghosts bool          // every sample is a ghost: planning a resume
	held   *atomic.Int64 // bytes of samples yielded and not yet handed out (nil when planning)
}

// skip decides, while the sample is being read, whether its bytes are needed.
func (l *lane) skip(index int64) bool {
	return l.ghosts || (l.seq < l.replay.count && !l.replay.buffered[index])
}

// Next returns the lane's next element, io.EOF at the end, or a fatal error.
func (l *lane) Next(ctx context.Context) (element, error) {
	for {
		if l.cur == nil {
			if l.next == len(l.parts) {
				return element{}, io.EOF
			}
			l.cur = l.ds.open(l.parts[l.next], l.alloc, l.skip)
			l.next++
			if p, ok := l.ds.(interface{ prefetch(part int) }); ok && !l.ghosts && l.next < len(l.parts) {
				p.prefetch(l.parts[l.next]) // remote shards: open the next one while this one is read
			}
		}
		it, err := l.cur.Next(ctx)
		if err == io.EOF {
			l.closePart()
			continue
		}
		el := element{item: it, err: err}
		if err != nil {
			if _, ok := pipeline.AsShardError(err); !ok && !el.slot() {
				return element{}, err
			}
		} else {
			el.ghost = l.skip(it.Index)
			if l.held != nil {
				l.held.Add(int64(cap(it.Encoded)))
			}
		}
		l.seq++
		return el, nil
	}
}

func (l *lane) closePart() {
	if l.cur != nil {
		l.cur.Close() // read-only file: a close error tells nothing more than a read would
		l.cur = nil
	}
}

// Close closes the open part.
func (l *lane) Close() { l.closePart() }

// elementStream is a lane, read in place or by its own goroutine.
type elementStream interface {
	Next(ctx context.Context) (element, error)
	Close()
}

// asyncLane reads a lane ahead on its own goroutine, a few elements ahead at most.
type asyncLane struct {
	out    chan laneResult
	cancel context.CancelFunc
}

type laneResult struct {
	el  element
	err error
}

// laneQueue is how many elements an async lane reads ahead.
const laneQueue = 2

func startLane(ctx context.Context, l *lane) *asyncLane {
	// The lane reads ahead on its own: its waits for memory are not the read stage's.
	ctx, cancel := context.WithCancel(pipeline.WithoutWorker(ctx))
	a := &asyncLane{out: make(chan laneResult, laneQueue), cancel: cancel}
	go func() {
		defer close(a.out)
		defer l.Close()
		for {
			el, err := l.Next(ctx)
			select {
			case a.out <- laneResult{el, err}:
			case <-ctx.Done():
				el.release()
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return a
}

func (a *asyncLane) Next(ctx context.Context) (element, error) {
	select {
	case r, ok := <-a.out:
		if !ok {
			return element{}, io.EOF
		}
		return r.el, r.err
	case <-ctx.Done():
		return element{}, ctx.Err()
	}
}

// Close stops the goroutine and releases what it read ahead; it returns once the goroutine
// has ended.
func (a *asyncLane) Close() {
	a.cancel()
	for r := range a.out {
		r.el.release()
	}
}

// merger interleaves lanes round-robin: one element from each lane in turn, a finished lane
// dropping out of the turn. The order depends only on each lane's own stream.
type merger struct {
	lanes []elementStream
	ids   []int   // ids[i] is the lane number of lanes[i]
	taken []int64 // elements taken from each lane number
	turn  int
}

func newMerger(lanes []elementStream) *merger {
	m := &merger{lanes: lanes, taken: make([]int64, len(lanes))}
	for i := range lanes {
		m.ids = append(m.ids, i)
	}
	return m
}

func (m *merger) Next(ctx context.Context) (element, error) {
	for len(m.lanes) > 0 {
		i := m.turn % len(m.lanes)
		el, err := m.lanes[i].Next(ctx)
		if err == io.EOF {
			m.lanes[i].Close()
			m.lanes = append(m.lanes[:i], m.lanes[i+1:]...)
			m.ids = append(m.ids[:i], m.ids[i+1:]...)
			m.turn = i // the next lane has moved into place i
			continue
		}
		if err != nil {
			return element{}, err
		}
		m.taken[m.ids[i]]++
		m.turn = i + 1
		return el, nil
	}
	return element{}, io.EOF
}

func (m *merger) Close() {
	for _, l := range m.lanes {
		l.Close()
	}
	m.lanes = nil
}
