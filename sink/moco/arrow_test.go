package moco

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/plots"
	"pipeline/schema"
)

// makeRecord builds a batch in the pipeline's schema, with fixed_shape_tensor [H,W,3] view
// columns as the batcher writes them.
func makeRecord(mem memory.Allocator, q, k []uint8, n, h, w int, labels []int32, epoch int) arrow.RecordBatch {
	view, err := schema.NewTensorType(arrow.PrimitiveTypes.Uint8, h, w, 3)
	if err != nil {
		panic(err)
	}
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "q", Type: view}, {Name: "k", Type: view},
		{Name: "label", Type: arrow.PrimitiveTypes.Int32}, {Name: "key", Type: arrow.BinaryTypes.String},
		{Name: "index", Type: arrow.PrimitiveTypes.Int64}, {Name: "epoch", Type: arrow.PrimitiveTypes.Int32},
	}, nil)
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	for col, pix := range [][]uint8{q, k} {
		lb := b.Field(col).(*array.ExtensionBuilder).StorageBuilder().(*array.FixedSizeListBuilder)
		vb := lb.ValueBuilder().(*array.Uint8Builder)
		for range n {
			lb.Append(true)
		}
		vb.AppendValues(pix, nil)
	}
	for i := range n {
		b.Field(2).(*array.Int32Builder).Append(labels[i])
		b.Field(3).(*array.StringBuilder).Append(fmt.Sprintf("%06d", i))
		b.Field(4).(*array.Int64Builder).Append(int64(i))
		b.Field(5).(*array.Int32Builder).Append(int32(epoch))
	}
	return b.NewRecordBatch()
}

// The sink trains on Arrow batches, releases every record, drops a batch of another size and
// reports its figures; a second sink resumes from the checkpoint with the pipeline position.
func TestSinkTrainsFromArrowAndResumes(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		cfg.CheckpointDir = t.TempDir()
		cfg.LogEvery = 1
		var log strings.Builder
		s, err := New(cfg, Options{Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		if s.PipelineState() != nil {
			t.Fatal("fresh sink has a pipeline state")
		}
		ctx := context.Background()
		labels := []int32{0, 1, 2, 3}
		for i := range 3 {
			q, k := randomViews(uint64(i), 4, 8, 8), randomViews(uint64(50+i), 4, 8, 8)
			s.SetPipelineState([]byte(fmt.Sprintf("after-batch-%d", i)))
			rec := makeRecord(mem, flatBytes(q), flatBytes(k), 4, 8, 8, labels, i/2)
			if err := s.Write(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
		short := makeRecord(mem, make([]uint8, 2*8*8*3), make([]uint8, 2*8*8*3), 2, 8, 8, labels[:2], 1)
		if err := s.Write(ctx, short); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		sum := s.Summary()
		if sum["steps"] != int64(3) || sum["dropped_rows"] != int64(2) || sum["backend"] != cfg.Backend {
			t.Fatalf("summary %v: want 3 steps and 2 dropped rows on %s", sum, cfg.Backend)
		}
		loss, ok := sum["final_loss"].(float32)
		if !ok || math.IsNaN(float64(loss)) || loss <= 0 {
			t.Errorf("final_loss %v", sum["final_loss"])
		}
		if frac, ok := sum["data_wait_fraction"].(float64); !ok || frac < 0 || frac > 1 {
			t.Errorf("data_wait_fraction %v", sum["data_wait_fraction"])
		}
		// Epoch 0 took 2 steps: the third step's line knows the total of 4 epochs and the time left.
		if !strings.Contains(log.String(), "epoch 1/4 step 1 loss") || !regexp.MustCompile(`epoch 2/4 step 3/8 loss [0-9.]+ acc [0-9.]+ lr [0-9.]+ data-wait [0-9]+% step [0-9]+ms left [0-9]`).MatchString(log.String()) {
			t.Errorf("log lacks the progress lines:\n%s", log.String())
		}
		checkTrainingReport(t, s, filepath.Join(cfg.CheckpointDir, "training.png"), loss)

		resumed, err := New(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer resumed.Close()
		if got := string(resumed.PipelineState()); got != "after-batch-2" {
			t.Errorf("resumed pipeline state %q, want after-batch-2", got)
		}
		if resumed.Trainer().Step() != 3 || resumed.Trainer().Epoch() != 1 {
			t.Errorf("resumed at step %d epoch %d", resumed.Trainer().Step(), resumed.Trainer().Epoch())
		}
	})
}

// A sink that resumes and then closes without training a step (the source was already at its
// end) must keep the pipeline position of its checkpoint: the final checkpoint it writes at the
// same step may not lose it, or the next run would start the data from the beginning.
func TestResumedSinkWithoutStepsKeepsPipelineState(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := tinyConfig()
	cfg.CheckpointDir = t.TempDir()
	trainAndClose(t, mem, cfg, 1, "after-batch-0")
	for run := range 2 {
		r, err := New(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(r.PipelineState()); got != "after-batch-0" || r.Trainer().Step() != 1 {
			t.Fatalf("resume %d: pipeline state %q at step %d, want after-batch-0 at step 1", run, got, r.Trainer().Step())
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// mean_step_ms is the mean over the steps this run timed (after its first, compiling step),
// also when the step count starts from a checkpoint's.
func TestMeanStepTimeAfterResume(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := tinyConfig()
	cfg.CheckpointDir = t.TempDir()
	trainAndClose(t, mem, cfg, 3, "")
	r, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// This run's steps: the first (compiling) 5 s, then two of 10 ms and 20 ms.
	r.record(StepResult{}, time.Millisecond, 5*time.Second)
	r.record(StepResult{}, time.Millisecond, 10*time.Millisecond)
	r.record(StepResult{}, 3*time.Millisecond, 20*time.Millisecond)
	sum := r.Summary()
	if sum["steps"] != int64(6) {
		t.Errorf("steps %v, want 6 (3 resumed + 3)", sum["steps"])
	}
	if got := sum["mean_step_ms"]; got != 15.0 {
		t.Errorf("mean_step_ms %v, want 15 (10 and 20 ms)", got)
	}
	if got := sum["data_wait_fraction"]; got != 4.0/34 {
		t.Errorf("data_wait_fraction %v, want 4/34", got)
	}
}

// Only a short last batch is dropped: a resumed run whose batches have another size than the
// checkpoint's cannot train, and says so instead of dropping every batch.
func TestResumedSinkRejectsAnotherBatchSize(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := tinyConfig()
	cfg.CheckpointDir = t.TempDir()
	ctx := context.Background()
	trainAndClose(t, mem, cfg, 1, "")
	r, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	labels := []int32{0, 1, 2, 3, 4, 5, 6, 7}
	var errs []error
	for i := range 3 {
		q, k := randomViews(uint64(10+i), 8, 8, 8), randomViews(uint64(20+i), 8, 8, 8)
		errs = append(errs, r.Write(ctx, makeRecord(mem, flatBytes(q), flatBytes(k), 8, 8, 8, labels, 0)))
	}
	if errs[0] != nil {
		t.Errorf("first batch of 8: %v (it may be a short last batch: dropped)", errs[0])
	}
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "8 rows") || !strings.Contains(errs[1].Error(), "4") {
		t.Errorf("second batch of 8 after the checkpoint's 4: error %v, want one naming both sizes", errs[1])
	}
	if errs[2] == nil {
		t.Error("third batch of 8 accepted")
	}
	if got := r.Summary()["dropped_rows"]; got != int64(8) {
		t.Errorf("dropped_rows %v, want 8", got)
	}
}

// trainAndClose trains a sink on batches of 4 random 8x8 twin views of epoch 0, with state as
// its pipeline position when not empty, and closes it: its checkpoint is in cfg.CheckpointDir.
func trainAndClose(t *testing.T, mem memory.Allocator, cfg Config, batches int, state string) {
	t.Helper()
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if state != "" {
		s.SetPipelineState([]byte(state))
	}
	for i := range batches {
		q, k := randomViews(uint64(i), 4, 8, 8), randomViews(uint64(9+i), 4, 8, 8)
		if err := s.Write(context.Background(), makeRecord(mem, flatBytes(q), flatBytes(k), 4, 8, 8, []int32{0, 1, 2, 3}, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A run resumed from a checkpoint taken at the end of an epoch (a periodic one, before the
// next epoch's first batch ran the kNN monitor) still evaluates that epoch, then its own.
func TestResumedSinkEvaluatesTheCheckpointsEpoch(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		cfg.CheckpointDir = t.TempDir()
		cfg.KNNK = 2
		crashed := newTestTrainer(t, cfg)
		for i := range 2 {
			if _, err := crashed.TrainStep(randomViews(uint64(i), 4, 8, 8), randomViews(uint64(9+i), 4, 8, 8), 0); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := crashed.Save(cfg.CheckpointDir, nil); err != nil {
			t.Fatal(err)
		}
		images := flatBytes(randomViews(7, 4, 8, 8))
		split := func(yield func(LabeledBatch, error) bool) {
			yield(LabeledBatch{Images: images, N: 4, H: 8, W: 8, Labels: []int32{0, 1, 0, 1}}, nil)
		}
		s, err := New(cfg, Options{KNN: &KNNSplits{Bank: split, Test: split}})
		if err != nil {
			t.Fatal(err)
		}
		q, k := randomViews(20, 4, 8, 8), randomViews(21, 4, 8, 8)
		if err := s.Write(context.Background(), makeRecord(mem, flatBytes(q), flatBytes(k), 4, 8, 8, []int32{0, 1, 2, 3}, 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Summary()["knn_accuracy_per_epoch"].([]float64); len(got) != 2 {
			t.Errorf("kNN evaluated %d times (%v), want 2: epoch 0, owed by the checkpoint, and epoch 1", len(got), got)
		}
		// The report counts the epochs on from the checkpoint: after the first and the second.
		if k := s.Training().KNN; len(k) != 2 || k[0].Epoch != 1 || k[1].Epoch != 2 {
			t.Errorf("report's kNN points %+v, want epochs 1 and 2", k)
		}
		// The final checkpoint says epoch 1 was evaluated: resuming it owes nothing more.
		r, err := New(cfg, Options{KNN: &KNNSplits{Bank: split, Test: split}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if got, _ := r.Summary()["knn_accuracy_per_epoch"].([]float64); len(got) != 0 {
			t.Errorf("a resumed run with nothing to train evaluated %d times, want 0", len(got))
		}
	})
}

// checkTrainingReport: the report holds every step in order, the first (compiling) one without
// a time, the last with the summary's loss, and its picture and CSV are written at path.
func checkTrainingReport(t *testing.T, s *Sink, path string, finalLoss float32) {
	t.Helper()
	tr := s.Training()
	if len(tr.Steps) != 3 || tr.FirstStepS <= 0 {
		t.Fatalf("report steps %+v, first step %.3fs", tr.Steps, tr.FirstStepS)
	}
	for i, p := range tr.Steps {
		if p.Step != int64(i+1) || p.N != 1 || p.Epoch != i/2 || (p.TimedN == 0) != (i == 0) || p.LR <= 0 {
			t.Fatalf("step %d: %+v", i+1, p)
		}
		if f := p.WaitFraction(); i > 0 && (f < 0 || f > 1) {
			t.Fatalf("step %d: data-wait fraction %v", i+1, f)
		}
	}
	if float32(tr.Steps[2].Loss) != finalLoss {
		t.Fatalf("last step's loss %v, summary's %v", tr.Steps[2].Loss, finalLoss)
	}
	if s.Summary()["report"] != path {
		t.Fatalf("summary's report %v, want %s", s.Summary()["report"], path)
	}
	if f, err := os.Open(path); err != nil {
		t.Fatal(err)
	} else if c, err := png.DecodeConfig(f); f.Close() != nil || err != nil || c.Width < 800 {
		t.Fatalf("report picture %+v %v", c, err)
	}
	steps, _ := plots.CSVPaths(path)
	b, err := os.ReadFile(steps)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) != 4 || rows[1][0] != "1" || rows[1][6] != "" || rows[3][0] != "3" || rows[3][6] == "" {
		t.Fatalf("report CSV (%v):\n%s", err, b)
	}
}
