package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"pipeline/internal/repo"
	"pipeline/pipeline"
	"pipeline/pipeline/config"
	"pipeline/stages/source"
)

// faultySink is a rowSink that fails (or panics) on one batch, as a full disk or a crashing
// trainer would.
type faultySink struct {
	rowSink
	failOn int // 1-based batch number
	panics bool
	calls  int
}

func (s *faultySink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	s.calls++
	if s.calls == s.failOn {
		rec.Release()
		if s.panics {
			panic("trainer crashed")
		}
		return errors.New("no space left on device")
	}
	return s.rowSink.Write(ctx, rec)
}

// delivered records what OnDelivered reported.
type delivered struct {
	mu      sync.Mutex
	batches int64
	pos     source.Position
}

func (d *delivered) record(batches int64, pos source.Position) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.batches, d.pos = batches, pos
	return nil
}

func stageReport(sum *Summary, name string) StageReport {
	for _, s := range sum.Stages {
		if s.Name == name {
			return s
		}
	}
	return StageReport{}
}

// A sink that fails (or panics: a panic anywhere in a run is an error naming where, see
// pipeline.TestRunPanicNamesSample for the stages) stops the run with its error, naming the
// batch; the position reported is that after the last batch the sink accepted, so a resumed
// run loses and repeats nothing.
func TestSinkErrorStopsTheRunNamingTheBatch(t *testing.T) {
	full := &rowSink{groups: []string{"q", "k"}}
	if _, err := build(t, exampleYAML(t)).Run(context.Background(), Options{Sink: full}); err != nil {
		t.Fatal(err)
	}
	for _, panics := range []bool{false, true} {
		t.Run(fmt.Sprintf("panics=%v", panics), func(t *testing.T) {
			snk := &faultySink{rowSink: rowSink{groups: []string{"q", "k"}}, failOn: 4, panics: panics}
			var got delivered
			sum, err := build(t, exampleYAML(t)).Run(context.Background(), Options{Sink: snk, OnDelivered: got.record})
			want := "sink: batch 4: no space left on device"
			if panics {
				want = "sink: batch 4: worker_panic: trainer crashed"
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("got error %v, want %q", err, want)
			}
			if sum == nil || !snk.closed {
				t.Fatalf("a failed run must still report a summary (%v) and close the sink (%v)", sum != nil, snk.closed)
			}
			if got.batches != 3 || stageReport(sum, "sink").Out != 3 || len(snk.rows) != 3*8 {
				t.Fatalf("delivered %d batches, sink stage out %d, sink rows %d; want 3 batches of 8",
					got.batches, stageReport(sum, "sink").Out, len(snk.rows))
			}
			if sum.Position != got.pos {
				t.Fatalf("summary position %v, last delivered %v", sum.Position, got.pos)
			}
			rest := &rowSink{groups: []string{"q", "k"}}
			pos := sum.Position.(source.Position)
			if _, err := build(t, exampleYAML(t)).Run(context.Background(), Options{Sink: rest, Start: &pos}); err != nil {
				t.Fatal(err)
			}
			all := append(append([]string{}, snk.rows...), rest.rows...)
			if strings.Join(all, ",") != strings.Join(full.rows, ",") {
				t.Fatalf("failed run (%d rows) + resumed run (%d rows) differ from the full run (%d rows)",
					len(snk.rows), len(rest.rows), len(full.rows))
			}
		})
	}
}

// copyShards copies the bundled example shards into a folder the test may delete from.
func copyShards(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("train-%06d.tar", i)
		b, err := os.ReadFile(filepath.Join(repo.TestRoot(t), "testdata/imagenet-like", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Shards deleted while the run goes on are missing_shard skips, and the run goes on: one
// listed but not yet opened (gone in both epochs), one already read (gone in the second).
func TestShardDisappearsMidRun(t *testing.T) {
	dir := copyShards(t)
	// In order, one shard at a time, with a small window: when the first batch of 4 is
	// delivered the source has read at most 4 (delivered) + 8 (two finished batches, one
	// queued and one waiting) + 10 (the window) samples: still in shard 0, which has 17.
	yaml := fmt.Sprintf(`source:
  shards: %q
  shuffle_shards: false
epochs: 2
seed: 3
views: {recipe: mocov2, size: 32}
batch:
  size: 4
workers: {decode: 1, augment: 1, queue: 2}
memory_budget: 48MiB
`, filepath.Join(dir, "train-{000000..000002}.tar"))
	j := build(t, yaml)
	if j.Window != 10 {
		t.Fatalf("window %d: the bound in the comment above assumes 10", j.Window)
	}
	snk := &rowSink{groups: []string{"q", "k"}}
	var deleted error
	onDelivered := func(batches int64, pos source.Position) error {
		if batches == 1 {
			deleted = errors.Join(os.Remove(filepath.Join(dir, "train-000000.tar")), os.Remove(filepath.Join(dir, "train-000002.tar")))
		}
		return nil
	}
	sum, err := j.Run(context.Background(), Options{Sink: snk, OnDelivered: onDelivered})
	if err != nil || deleted != nil {
		t.Fatalf("run: %v; deleting: %v", err, deleted)
	}
	var shards []string
	for _, s := range sum.Skipped.Shards {
		if !strings.Contains(s.Error, "no such file") {
			t.Errorf("shard %s: message %q does not say the file is gone", s.Shard, s.Error)
		}
		shards = append(shards, filepath.Base(s.Shard)+":"+s.Reason)
	}
	want := "train-000000.tar:missing_shard,train-000002.tar:missing_shard,train-000002.tar:missing_shard"
	if strings.Join(shards, ",") != want {
		t.Fatalf("shard skips %q, want %q", shards, want)
	}
	// Epoch 0 reads shards 0 and 1 (17 + 17 samples), epoch 1 shard 1 only.
	if sum.Read != 51 || sum.Read != sum.Emitted+sum.Skipped.Total || int64(len(snk.rows)) != sum.Emitted {
		t.Fatalf("read %d (want 51), emitted %d, skipped %d, sink rows %d", sum.Read, sum.Emitted, sum.Skipped.Total, len(snk.rows))
	}
}

// Under on_error: fail a shard that is gone stops the run and names it.
func TestMissingShardFailsUnderFail(t *testing.T) {
	dir := copyShards(t)
	if err := os.Remove(filepath.Join(dir, "train-000001.tar")); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("source:\n  shards: %q\nviews: {recipe: mocov2, size: 32}\nmemory_budget: 48MiB\non_error: fail\n",
		filepath.Join(dir, "train-{000000..000002}.tar"))
	_, err := build(t, yaml).Run(context.Background(), Options{Sink: &rowSink{groups: []string{"q", "k"}}})
	se, ok := pipeline.AsShardError(err)
	if !ok || se.Reason != "missing_shard" || !strings.HasSuffix(se.Shard, "train-000001.tar") {
		t.Fatalf("got %v, want a missing_shard error naming train-000001.tar", err)
	}
}

// FuzzBuild feeds any config text and override to Parse and Build, which decodes every
// component block strictly and sizes the memory budget: it must never panic, and a job it
// accepts must fit its budget.
func FuzzBuild(f *testing.F) {
	seed := `source:
  shards: /data/train-{000000..000002}.tar
  shuffle_buffer: 16
epochs: 2
views: {recipe: mocov2, size: 64}
batch:
  size: 8
sink: {kind: arrow-file, path: out/x.arrow}
workers: {decode: 2, augment: 3}
memory_budget: 48MiB
`
	for _, set := range []string{"views.size=32", "batch.size=1000000", "views=byol", "sink.kind=null", "workers.queue=1000000", "source.synthetic={count: 5}",
		// These once overflowed the budget arithmetic: a zero batches share, a negative window.
		"batch.size=4611686018427387904\nmemory_budget=8GiB", "workers.queue=4611686018427387904\nmemory_budget=8GiB"} {
		f.Add([]byte(seed), set)
	}
	f.Fuzz(func(t *testing.T, src []byte, set string) {
		cfg, err := config.Parse("fuzz.yaml", src, strings.Split(set, "\n"))
		if err != nil {
			return
		}
		j, err := Build(cfg)
		if err != nil {
			return
		}
		s := j.Split
		if s.Encoded <= 0 || s.Decoded <= 0 || s.Views <= 0 || s.Batches <= 0 || s.Total() > int64(cfg.MemoryBudget) || j.Window < 1 {
			t.Fatalf("accepted a job that does not fit memory_budget %d: split %+v, window %d", cfg.MemoryBudget, s, j.Window)
		}
	})
}
