package arrowfile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/pipeline"
	"pipeline/schema"
	"pipeline/stages/batch"
)

var groups = []batch.GroupShape{
	{Name: "q", Views: 1, Height: 5, Width: 7},
	{Name: "local", Views: 2, Height: 3, Width: 4},
}

// makeBatches runs n items through a real batcher (batches of 4) on a checked allocator and
// returns the batches; cleanup asserts that the sink released all of them.
func makeBatches(t *testing.T, n int) []arrow.RecordBatch {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	acct := pipeline.NewBudget(pipeline.BudgetSplit{Batches: 1 << 20}).Batches
	b, err := batch.New(batch.Config{Size: 4, Recipe: "test"}, groups, acct, mem)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		mem.AssertSize(t, 0)
		if acct.InUse() != 0 {
			t.Errorf("budget holds %d bytes: a batch was not released", acct.InUse())
		}
	})
	var out []arrow.RecordBatch
	for seq := range int64(n) {
		it := &pipeline.Item{Meta: pipeline.Meta{Key: fmt.Sprint("k", seq), Index: 100 + seq, Label: int32(seq), Seq: seq}}
		for g, gs := range groups {
			vg := pipeline.ViewGroup{Name: gs.Name}
			for v := range gs.Views {
				pix := make([]uint8, gs.Height*gs.Width*3)
				for i := range pix {
					pix[i] = byte(int(seq)*17 + g*5 + v*3 + i)
				}
				vg.Views = append(vg.Views, pipeline.Image{Width: gs.Width, Height: gs.Height, Pix: pix})
			}
			it.Groups = append(it.Groups, vg)
		}
		rec, err := b.Push(context.Background(), it)
		if err != nil {
			t.Fatal(err)
		}
		if rec != nil {
			out = append(out, rec)
		}
	}
	last, err := b.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if last != nil {
		out = append(out, last)
	}
	return out
}

// fingerprint is what a reader must see: per group, the tensor shape and a hash of all its
// bytes; and the index column.
type fingerprint struct {
	Version string                  `json:"version"`
	Groups  map[string]groupSummary `json:"groups"`
	Index   []int64                 `json:"index"`
}

type groupSummary struct {
	Shape  []int  `json:"shape"`
	Rows   int    `json:"rows"`
	SHA256 string `json:"sha256"`
}

func fingerprintOf(t *testing.T, recs []arrow.RecordBatch) fingerprint {
	t.Helper()
	fp := fingerprint{Groups: map[string]groupSummary{}}
	hashes := map[string]io.Writer{}
	sums := map[string]func() []byte{}
	for _, rec := range recs {
		fp.Version, _ = rec.Schema().Metadata().GetValue(schema.MetaVersion)
		for _, gs := range groups {
			data, shape, err := schema.Uint8Tensor(rec, gs.Name)
			if err != nil {
				t.Fatal(err)
			}
			if hashes[gs.Name] == nil {
				h := sha256.New()
				hashes[gs.Name], sums[gs.Name] = h, func() []byte { return h.Sum(nil) }
			}
			hashes[gs.Name].Write(data)
			s := fp.Groups[gs.Name]
			s.Shape, s.Rows = shape[1:], s.Rows+shape[0]
			fp.Groups[gs.Name] = s
		}
		idx := rec.Column(rec.Schema().FieldIndices(schema.ColIndex)[0]).(*array.Int64)
		fp.Index = append(fp.Index, idx.Int64Values()...)
	}
	for name, sum := range sums {
		s := fp.Groups[name]
		s.SHA256 = hex.EncodeToString(sum())
		fp.Groups[name] = s
	}
	return fp
}

// writeFile writes the batches of n items to a file and returns its path and the fingerprint
// of what was written.
func writeFile(t *testing.T, n int) (string, fingerprint, *Sink) {
	t.Helper()
	recs := makeBatches(t, n)
	want := fingerprintOf(t, recs)
	path := filepath.Join(t.TempDir(), "batches.arrows")
	s, err := New(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := s.Write(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, want, s
}

func readStream(t *testing.T, r io.Reader) fingerprint {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rd, err := ipc.NewReader(r, ipc.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	var recs []arrow.RecordBatch
	for rd.Next() {
		rec := rd.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if rd.Err() != nil {
		t.Fatal(rd.Err())
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for _, rec := range recs {
		for _, gs := range groups {
			col, err := schema.Tensor(rec, gs.Name)
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			if col.TensorType().ExtensionName() != "arrow.fixed_shape_tensor" {
				t.Fatalf("column %s read back as %s", gs.Name, col.DataType())
			}
		}
	}
	return fingerprintOf(t, recs)
}

func TestRoundTripThroughTheIPCReader(t *testing.T) {
	path, want, s := writeFile(t, 10) // batches of 4, 4, 2
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := readStream(t, f)
	if want.Groups["local"].Rows != 10 || !slices.Equal(want.Groups["local"].Shape, []int{2, 3, 4, 3}) {
		t.Fatalf("the written batches look wrong: %+v", want)
	}
	gotJS, _ := json.Marshal(got)
	wantJS, _ := json.Marshal(want)
	if !bytes.Equal(gotJS, wantJS) {
		t.Fatalf("read back %s\nwrote %s", gotJS, wantJS)
	}
	st, _ := os.Stat(path)
	sum := s.Summary()
	if sum["path"] != path || sum["batches"] != int64(3) || sum["samples"] != int64(10) || sum["bytes"] != st.Size() {
		t.Fatalf("summary %v, file has %d bytes", sum, st.Size())
	}
}

func TestDashWritesToStdout(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	s, err := New(Config{Path: "-"})
	os.Stdout = stdout
	if err != nil {
		t.Fatal(err)
	}
	recs := makeBatches(t, 5)
	want := fingerprintOf(t, recs)
	read := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(r); read <- b }()
	for _, rec := range recs {
		if err := s.Write(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(nil); err != nil {
		t.Fatal("Close closed stdout")
	}
	w.Close()
	got := readStream(t, bytes.NewReader(<-read))
	if got.Groups["q"].SHA256 != want.Groups["q"].SHA256 || len(got.Index) != 5 {
		t.Fatalf("stdout stream read back as %+v, want %+v", got, want)
	}
}

func TestSchemaChangeIsAnError(t *testing.T) {
	s, err := New(Config{Path: filepath.Join(t.TempDir(), "x.arrows")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := makeBatches(t, 4)
	if err := s.Write(context.Background(), recs[0]); err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	col := array.MakeArrayOfNull(mem, arrow.PrimitiveTypes.Int8, 1)
	defer col.Release()
	other := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int8}}, nil), []arrow.Array{col}, 1)
	if err := s.Write(context.Background(), other); err == nil {
		t.Fatal("a batch with another schema was written")
	}
}

func TestEmptyPathIsAnError(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("no error for an empty path")
	}
}

// pyarrowScript reads the stream and prints what pyarrow sees, in the fingerprint's JSON.
const pyarrowScript = `
import hashlib, json, sys
import pyarrow as pa
with pa.OSFile(sys.argv[1], "rb") as f:
    table = pa.ipc.open_stream(f).read_all()
out = {"version": table.schema.metadata[b"pipeline.schema_version"].decode(), "groups": {},
       "index": table.column("index").to_pylist()}
for name in sys.argv[2:]:
    typ = table.schema.field(name).type
    if not isinstance(typ, pa.FixedShapeTensorType) or typ.extension_name != "arrow.fixed_shape_tensor":
        sys.exit(f"column {name} is {typ!r}, not a fixed_shape_tensor")
    h, rows = hashlib.sha256(), 0
    for chunk in table.column(name).chunks:
        nd = chunk.to_numpy_ndarray()
        if nd.dtype.name != "uint8" or list(nd.shape[1:]) != list(typ.shape):
            sys.exit(f"column {name}: ndarray {nd.dtype} {nd.shape}, type shape {typ.shape}")
        h.update(nd.tobytes())
        rows += nd.shape[0]
    out["groups"][name] = {"shape": list(typ.shape), "rows": rows, "sha256": h.hexdigest()}
print(json.dumps(out))
`

func TestPyarrowReadsFixedShapeTensor(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: skipping the pyarrow interoperability check")
	}
	if out, err := exec.Command(python, "-c", "import pyarrow").CombinedOutput(); err != nil {
		t.Skipf("python3 has no pyarrow (%v: %s): skipping the pyarrow interoperability check", err, bytes.TrimSpace(out))
	}
	path, want, _ := writeFile(t, 10)
	args := []string{"-c", pyarrowScript, path}
	for _, g := range groups {
		args = append(args, g.Name)
	}
	out, err := exec.Command(python, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("pyarrow: %v\n%s", err, stderr)
	}
	var got fingerprint
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("pyarrow printed %q: %v", out, err)
	}
	gotJS, _ := json.Marshal(got)
	wantJS, _ := json.Marshal(want)
	if !bytes.Equal(gotJS, wantJS) {
		t.Fatalf("pyarrow read %s\nGo wrote   %s", gotJS, wantJS)
	}
}

// The file is rewritten from the first batch on. A run that fails before any batch leaves what
// an earlier run wrote; one that ends well without a batch leaves it empty; a shorter stream
// leaves none of the longer one's bytes behind.
func TestEarlierFileKeptUntilTheFirstBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.arrows")
	old := append(bytes.Repeat([]byte("x"), 1<<20), "an earlier run's batches"...)
	for _, tc := range []struct {
		name    string
		batches int
		fail    bool
		want    func(b []byte) bool
	}{
		{"failed before a batch", 0, true, func(b []byte) bool { return bytes.Equal(b, old) }},
		{"ended well without a batch", 0, false, func(b []byte) bool { return len(b) == 0 }},
		{"a batch, then failed", 1, true, func(b []byte) bool { return len(readStream(t, bytes.NewReader(b)).Index) == 1 }},
	} {
		if err := os.WriteFile(path, old, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		for i, rec := range makeBatches(t, 1) {
			if i >= tc.batches {
				rec.Release()
				continue
			}
			if err := s.Write(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
		}
		if tc.fail {
			s.Fail(fmt.Errorf("the run failed"))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); !tc.want(b) {
			t.Errorf("%s: the file holds %d bytes: %.40q...", tc.name, len(b), b)
		} else if n := s.Summary()["bytes"].(int64); tc.batches > 0 && int64(len(b)) != n {
			t.Errorf("%s: the file holds %d bytes, the stream %d: the earlier run's are left after it", tc.name, len(b), n)
		}
	}
}

// A FIFO as the path (a consumer reading the stream as it comes): New does not wait for the
// reader, the run starts and the first Write waits for it instead.
func TestNewOnAFIFODoesNotBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stream.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	opened := make(chan error, 1)
	go func() {
		s, err := New(Config{Path: path})
		if err == nil {
			s.Fail(errors.New("test over"))
			err = s.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("New blocked on a FIFO with no reader")
	}
}
