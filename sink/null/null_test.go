package null

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/goccy/go-yaml"
)

// record makes a one-column batch of rows int64 values on mem, with no validity bitmap, so
// that it holds exactly rows*8 bytes.
func record(mem memory.Allocator, rows int) arrow.RecordBatch {
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(rows * 8)
	defer buf.Release()
	data := array.NewData(arrow.PrimitiveTypes.Int64, rows, []*memory.Buffer{nil, buf}, nil, 0, 0)
	defer data.Release()
	col := array.MakeFromData(data)
	defer col.Release()
	sc := arrow.NewSchema([]arrow.Field{{Name: "index", Type: arrow.PrimitiveTypes.Int64}}, nil)
	return array.NewRecordBatch(sc, []arrow.Array{col}, int64(rows))
}

func TestCountsAndReleases(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := New(Config{})
	for _, rows := range []int{3, 5} {
		if err := s.Write(context.Background(), record(mem, rows)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sum := s.Summary()
	if sum["batches"] != int64(2) || sum["samples"] != int64(8) || sum["bytes"] != int64(8*8) {
		t.Fatalf("summary %v", sum)
	}
}

func TestDelayHoldsTheBatch(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := New(Config{Delay: 30 * time.Millisecond})
	t0 := time.Now()
	if err := s.Write(context.Background(), record(mem, 1)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 30*time.Millisecond {
		t.Fatalf("Write returned after %v, before its delay", d)
	}
}

func TestDelayEndsWithTheContext(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := New(Config{Delay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, record(mem, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestConfigDecodesDelay(t *testing.T) {
	var c Config
	if err := yaml.UnmarshalWithOptions([]byte("delay: 50ms\n"), &c, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	if c.Delay != 50*time.Millisecond {
		t.Fatalf("delay %v", c.Delay)
	}
}
