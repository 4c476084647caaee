package batch

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/pipeline"
)

var mocoGroups = []GroupShape{
	{Name: "q", Views: 1, Height: 224, Width: 224},
	{Name: "k", Views: 1, Height: 224, Width: 224},
}

// benchPush pushes batches of 256 MoCo items (2 views of 224x224) and releases each batch
// at once, as a fast sink would. Bytes are the view bytes copied per batch.
func benchPush(b *testing.B, cfg Config) {
	acct := pipeline.NewBudget(pipeline.BudgetSplit{Batches: 4 << 30}).Batches
	bt, err := New(cfg, mocoGroups, acct, memory.NewGoAllocator())
	if err != nil {
		b.Fatal(err)
	}
	defer bt.Close()
	views := make([]pipeline.Image, 2)
	for v := range views {
		views[v] = pipeline.Image{Width: 224, Height: 224, Pix: make([]uint8, 224*224*3)}
		for i := range views[v].Pix {
			views[v].Pix[i] = uint8(i * (v + 1))
		}
	}
	ctx := context.Background()
	b.SetBytes(int64(cfg.Size) * 2 * 224 * 224 * 3)
	b.ReportAllocs()
	var seq int64
	for b.Loop() {
		for range cfg.Size {
			it := &pipeline.Item{
				Meta:   pipeline.Meta{Key: "000000", Index: seq, Seq: seq},
				Groups: []pipeline.ViewGroup{{Name: "q", Views: views[:1]}, {Name: "k", Views: views[1:]}},
			}
			seq++
			rec, err := bt.Push(ctx, it)
			if err != nil {
				b.Fatal(err)
			}
			if rec != nil {
				rec.Release()
			}
		}
	}
}

func BenchmarkPush256x2x224(b *testing.B) { benchPush(b, Config{Size: 256}) }

func BenchmarkPush256x2x224Normalize(b *testing.B) { benchPush(b, Config{Size: 256, Normalize: true}) }

// BenchmarkMemcpy256x2x224 is the floor: copying the same bytes into a reused buffer.
func BenchmarkMemcpy256x2x224(b *testing.B) {
	src := make([]byte, 224*224*3)
	dst := make([]byte, 256*2*len(src))
	b.SetBytes(int64(len(dst)))
	for b.Loop() {
		for off := 0; off < len(dst); off += len(src) {
			copy(dst[off:], src)
		}
	}
}
