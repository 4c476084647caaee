package batch

import (
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/pipeline"
)

// Pool is a memory.Allocator that keeps freed buffers for reuse, so that every batch after
// the first reuses the last one's buffers instead of asking the Go heap for tens of
// megabytes. It is safe for concurrent use: the batcher allocates while sinks free.
//
// The buffers it keeps are outside the memory budget (the budget charges live batches), so
// it keeps at most maxIdle bytes; Close hands them all back to the underlying allocator.
type Pool struct {
	under   memory.Allocator
	maxIdle int

	mu     sync.Mutex
	idle   map[int][][]byte          // size class -> free buffers as under gave them
	idleSz int                       // bytes in idle
	live   map[unsafe.Pointer][]byte // first byte of a handed-out buffer -> its full buffer
	closed bool
}

// NewPool returns a pool over under (memory.DefaultAllocator when nil) keeping up to maxIdle
// bytes of free buffers.
func NewPool(under memory.Allocator, maxIdle int) *Pool {
	if under == nil {
		under = memory.DefaultAllocator
	}
	return &Pool{under: under, maxIdle: maxIdle, idle: map[int][][]byte{}, live: map[unsafe.Pointer][]byte{}}
}

// Allocate returns a buffer of size bytes with undefined contents.
func (p *Pool) Allocate(size int) []byte {
	if size == 0 {
		return []byte{}
	}
	class := sizeClass(size)
	p.mu.Lock()
	defer p.mu.Unlock()
	var full []byte
	if free := p.idle[class]; len(free) > 0 {
		full = free[len(free)-1]
		p.idle[class] = free[:len(free)-1]
		p.idleSz -= class
	} else {
		full = p.under.Allocate(class)
	}
	p.live[unsafe.Pointer(unsafe.SliceData(full))] = full
	return full[:size:size]
}

// Reallocate resizes b, keeping its contents; it grows in place when b's size class allows.
func (p *Pool) Reallocate(size int, b []byte) []byte {
	if len(b) == 0 {
		return p.Allocate(size)
	}
	p.mu.Lock()
	full, ok := p.live[unsafe.Pointer(unsafe.SliceData(b))]
	p.mu.Unlock()
	if !ok {
		panic("batch.Pool: Reallocate of a buffer the pool did not allocate")
	}
	if size <= len(full) {
		return full[:size:size]
	}
	nb := p.Allocate(size)
	copy(nb, b)
	p.Free(b)
	return nb
}

// Free takes b back for reuse, or hands it to the underlying allocator when the pool is full
// or closed.
func (p *Pool) Free(b []byte) {
	if cap(b) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	key := unsafe.Pointer(unsafe.SliceData(b))
	full, ok := p.live[key]
	if !ok {
		panic("batch.Pool: Free of a buffer the pool did not allocate (or freed twice)")
	}
	delete(p.live, key)
	class := len(full)
	if p.closed || p.idleSz+class > p.maxIdle {
		p.under.Free(full)
		return
	}
	p.idle[class] = append(p.idle[class], full)
	p.idleSz += class
}

// Idle is the number of bytes kept for reuse.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.idleSz
}

// Close hands every idle buffer back to the underlying allocator; buffers still in use go
// back there when they are freed.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for class, free := range p.idle {
		for _, b := range free {
			p.under.Free(b)
		}
		delete(p.idle, class)
	}
	p.idleSz = 0
}

// sizeClass is the runtime's size class (pipeline.SizeClass), except that a small buffer is
// only rounded up to a multiple of 64 (Arrow's alignment): string columns are often small.
func sizeClass(n int) int {
	n = (n + 63) &^ 63
	if n <= 4096 {
		return n
	}
	return pipeline.SizeClass(n)
}

var _ memory.Allocator = (*Pool)(nil)
