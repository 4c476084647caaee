package batch

import (
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestPoolReusesFreedBuffers(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := NewPool(mem, 1<<20)
	defer p.Close()
	a := p.Allocate(100_000)
	if len(a) != 100_000 {
		t.Fatalf("len %d", len(a))
	}
	p.Free(a)
	if p.Idle() == 0 {
		t.Fatal("the freed buffer was not kept")
	}
	b := p.Allocate(99_000) // same size class
	if unsafe.SliceData(a) != unsafe.SliceData(b) {
		t.Fatal("a buffer of the same size class was not reused")
	}
	if p.Idle() != 0 {
		t.Fatalf("idle %d after reuse", p.Idle())
	}
	p.Free(b)
}

func TestPoolReallocatesInPlaceWithinTheClass(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := NewPool(mem, 1<<20)
	defer p.Close()
	a := p.Allocate(5000)
	a[0] = 7
	b := p.Reallocate(5100, a)
	if unsafe.SliceData(a) != unsafe.SliceData(b) || len(b) != 5100 {
		t.Fatal("grew out of place within the size class")
	}
	c := p.Reallocate(50_000, b)
	if c[0] != 7 || len(c) != 50_000 {
		t.Fatal("contents lost on growth")
	}
	p.Free(c)
}

func TestPoolKeepsAtMostMaxIdle(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := NewPool(mem, 10_000)
	a, b := p.Allocate(8192), p.Allocate(8192)
	p.Free(a)
	p.Free(b) // over the limit: goes back to mem
	if p.Idle() != 8192 {
		t.Fatalf("idle %d, want one buffer of 8192", p.Idle())
	}
	if mem.CurrentAlloc() != 8192 {
		t.Fatalf("mem holds %d, want the idle buffer only", mem.CurrentAlloc())
	}
	p.Close()
	c := p.Allocate(64)
	p.Free(c) // after Close, straight back to mem
	if p.Idle() != 0 {
		t.Fatal("the pool kept a buffer after Close")
	}
}

func TestPoolRejectsForeignBuffers(t *testing.T) {
	p := NewPool(nil, 1<<20)
	defer func() {
		if recover() == nil {
			t.Fatal("Free of a foreign buffer did not panic")
		}
	}()
	p.Free(make([]byte, 10))
}

func TestSizeClass(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{1, 64}, {64, 64}, {65, 128}, {4096, 4096}, {4097, 5120}, {8192, 8192}, {8193, 10240},
		// One 256 x 224x224x3 column, 38,535,168 bytes, lies in [2^25, 2^26): 1.25 x 2^25.
		{256 * 224 * 224 * 3, 41_943_040},
	} {
		got := sizeClass(tc.n)
		if got != tc.want {
			t.Errorf("sizeClass(%d) = %d, want %d", tc.n, got, tc.want)
		}
		if got < tc.n || got%64 != 0 {
			t.Errorf("sizeClass(%d) = %d is too small or unaligned", tc.n, got)
		}
	}
}
