package job

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"pipeline/augment"
	"pipeline/internal/repo"
	"pipeline/pipeline"
	"pipeline/pipeline/config"
	"pipeline/schema"
	"pipeline/sink/arrowsocket"
	"pipeline/sink/moco/device"
	"pipeline/stages/decode"
	"pipeline/stages/source"
)

// rowSink records a hash of every row (key and the pixels of every view group) and can be
// slow, as a training step is.
type rowSink struct {
	delay   time.Duration
	groups  []string
	mu      sync.Mutex
	rows    []string
	batches int
	closed  bool
}

func (s *rowSink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	defer rec.Release()
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	keys := rec.Column(int(rec.Schema().FieldIndices(schema.ColKey)[0])).(*array.String)
	var views [][]byte
	var rowBytes []int
	for _, g := range s.groups {
		data, shape, err := schema.Uint8Tensor(rec, g)
		if err != nil {
			return err
		}
		views = append(views, data)
		n := 1
		for _, d := range shape[1:] {
			n *= d
		}
		rowBytes = append(rowBytes, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < int(rec.NumRows()); i++ {
		h := sha256.New()
		h.Write([]byte(keys.Value(i)))
		for g := range views {
			h.Write(views[g][i*rowBytes[g] : (i+1)*rowBytes[g]])
		}
		s.rows = append(s.rows, keys.Value(i)+":"+hex.EncodeToString(h.Sum(nil))[:16])
	}
	s.batches++
	return nil
}

func (s *rowSink) Close() error            { s.closed = true; return nil }
func (s *rowSink) Summary() map[string]any { return map[string]any{"batches": s.batches} }

func build(t *testing.T, yaml string, sets ...string) *Job {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), sets)
	if err != nil {
		t.Fatal(err)
	}
	j, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func exampleYAML(t *testing.T) string {
	shards := filepath.Join(repo.TestRoot(t), "testdata/imagenet-like/train-{000000..000002}.tar")
	return fmt.Sprintf(`source:
  shards: %q
  shuffle_buffer: 16
epochs: 2
seed: 3
views: {recipe: mocov2, size: 64}
batch:
  size: 8
workers:
  decode: 2
  augment: 3
memory_budget: 48MiB
`, shards)
}

// The example shards through a deliberately slow sink: the budget holds and nothing is lost.
func TestExampleShardsSlowSinkBudgetAndCounts(t *testing.T) {
	j := build(t, exampleYAML(t))
	snk := &rowSink{delay: 60 * time.Millisecond, groups: []string{"q", "k"}}
	var peakSeen int64
	sum, err := j.Run(context.Background(), Options{Sink: snk, OnStart: func(r *pipeline.Run, b *pipeline.Budget) {
		go func() {
			for r.Context().Err() == nil {
				peakSeen = max(peakSeen, b.InUse())
				time.Sleep(time.Millisecond)
			}
		}()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Read == 0 || sum.Read != sum.Emitted+sum.Skipped.Total {
		t.Fatalf("read %d != emitted %d + skipped %d", sum.Read, sum.Emitted, sum.Skipped.Total)
	}
	if int64(len(snk.rows)) != sum.Emitted || !snk.closed {
		t.Fatalf("sink got %d rows, summary says %d emitted (closed %v)", len(snk.rows), sum.Emitted, snk.closed)
	}
	if sum.MemoryPeak > int64(j.Config.MemoryBudget) || sum.MemoryPeak == 0 {
		t.Fatalf("memory peak %d outside (0, budget %d]", sum.MemoryPeak, j.Config.MemoryBudget)
	}
	// The sink is the bottleneck: upstream stages must have waited on it rather than piling up.
	var batchStage, sinkStage StageReport
	for _, s := range sum.Stages {
		switch s.Name {
		case "batch":
			batchStage = s
		case "sink":
			sinkStage = s
		}
	}
	if sinkStage.Busy < 0.5 {
		t.Fatalf("a 60ms-per-batch sink should be busy most of the time: %+v", sinkStage)
	}
	if batchStage.In == 0 {
		t.Fatalf("batch stage saw nothing: %+v", sum.Stages)
	}
}

// The same config gives the same batches whatever the worker counts.
func TestDeterministicAcrossWorkerCounts(t *testing.T) {
	var runs [][]string
	for _, w := range [][2]int{{1, 1}, {3, 4}} {
		j := build(t, exampleYAML(t), fmt.Sprintf("workers.decode=%d", w[0]), fmt.Sprintf("workers.augment=%d", w[1]))
		snk := &rowSink{groups: []string{"q", "k"}}
		if _, err := j.Run(context.Background(), Options{Sink: snk}); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, snk.rows)
	}
	if strings.Join(runs[0], ",") != strings.Join(runs[1], ",") {
		t.Fatalf("worker counts changed the stream:\n%v\n%v", runs[0][:4], runs[1][:4])
	}
}

// A run stopped after some samples and resumed from its position yields exactly the tail of
// the uninterrupted run, pixels included.
func TestResumeIsExact(t *testing.T) {
	full := &rowSink{groups: []string{"q", "k"}}
	if _, err := build(t, exampleYAML(t)).Run(context.Background(), Options{Sink: full}); err != nil {
		t.Fatal(err)
	}
	first := &rowSink{groups: []string{"q", "k"}}
	sum, err := build(t, exampleYAML(t)).Run(context.Background(), Options{Sink: first, MaxSamples: 61})
	if err != nil {
		t.Fatal(err)
	}
	pos := sum.Position.(source.Position)
	rest := &rowSink{groups: []string{"q", "k"}}
	if _, err := build(t, exampleYAML(t)).Run(context.Background(), Options{Sink: rest, Start: &pos}); err != nil {
		t.Fatal(err)
	}
	got := append(append([]string{}, first.rows...), rest.rows...)
	if len(first.rows) == 0 || len(rest.rows) == 0 || strings.Join(got, ",") != strings.Join(full.rows, ",") {
		t.Fatalf("resumed stream differs: first %d + rest %d rows vs full %d", len(first.rows), len(rest.rows), len(full.rows))
	}
}

// The plan line names what the run will use: workers, window, the budget as split, the batch
// shape and the sink.
func TestPlanSaysHowTheJobIsLaidOut(t *testing.T) {
	j := build(t, exampleYAML(t), "workers.decode=2", "workers.augment=3", "batch.size=8", "memory_budget=64MiB", "views=mocov2")
	plan := j.Plan()
	for _, want := range []string{
		"decode 2, augment 3", fmt.Sprintf("window %d samples", j.Window),
		"memory 64.0 MiB = encoded " + config.ByteSize(j.Split.Encoded).String(),
		"batches of 8 (q 1x224x224x3, k 1x224x224x3)", "sink null",
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan %q lacks %q", plan, want)
		}
	}
}

// With the trainer sink the plan line says which backend `auto` chose, and why SimpleGo.
func TestPlanNamesTheTrainersBackend(t *testing.T) {
	plugin := filepath.Join(t.TempDir(), "pjrt_c_api_cpu_plugin.so")
	if err := os.WriteFile(plugin, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		sets []string
		want string
	}{
		{[]string{"sink={kind: moco, backend: go}"}, "sink moco on go (SimpleGo)"},
		{[]string{"sink={kind: moco, plugin: " + plugin + "}"}, "sink moco on xla (PJRT plugin " + plugin + ")"},
		{[]string{"sink={kind: moco, backend: xla, plugin: /nonexistent/plugin.so}"}, "sink moco (backend xla: xla plugin: stat /nonexistent/plugin.so"},
	}
	for _, c := range cases {
		plan := build(t, exampleYAML(t), c.sets...).Plan()
		if !strings.Contains(plan, c.want) {
			t.Errorf("plan %q lacks %q", plan, c.want)
		}
	}
	// No plugin anywhere: auto falls back to SimpleGo and says so.
	yaml := exampleYAML(t)
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", "")
	t.Chdir(t.TempDir())
	if _, err := device.FindPlugin(); err == nil {
		t.Skip("a PJRT plugin is installed beside the test binary")
	}
	plan := build(t, yaml, "sink={kind: moco}").Plan()
	if want := "sink moco on go (SimpleGo: no PJRT plugin found"; !strings.Contains(plan, want) {
		t.Errorf("plan %q lacks %q", plan, want)
	}
}

func TestRefusesConfigThatCannotFit(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(exampleYAML(t)), []string{"memory_budget=8MiB", "batch.size=256", "views=mocov2"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(cfg)
	if err == nil || !strings.Contains(err.Error(), "memory_budget") || !strings.Contains(err.Error(), "cannot fit") {
		t.Fatalf("want a memory_budget error, got %v", err)
	}
}

func TestUnknownSinkKind(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(exampleYAML(t)+"sink:\n  kind: tape\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Build(cfg); err == nil || !strings.Contains(err.Error(), `unknown kind "tape"`) || !strings.Contains(err.Error(), "test.yaml:") {
		t.Fatalf("want an unknown-kind error with the file, got %v", err)
	}
}

// Build decodes the sink block strictly for its kind, before any run (and so before
// `pipeline profile` swaps the sink), and says which --set changed the config.
func TestBuildRefusesSinkBlockTypos(t *testing.T) {
	for _, kind := range []string{"null", "arrow-file", "arrow-socket", "flight", "moco"} {
		cfg, err := config.Parse("test.yaml", []byte(exampleYAML(t)), []string{"sink.kind=" + kind, "sink.pth=x"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Build(cfg)
		if err == nil || !strings.Contains(err.Error(), `unknown field "pth"`) || !strings.Contains(err.Error(), "--set sink.kind="+kind+" --set sink.pth=x") {
			t.Errorf("kind %s: want an unknown-field error naming the --set, got %v", kind, err)
		}
	}
}

// A --set that changes only sink.kind keeps the file's keys for the old kind; the error says so
// and how to replace the whole block, which then builds.
func TestSetSinkKindExplainsTheKeysOfTheOldKind(t *testing.T) {
	file := exampleYAML(t) + "sink:\n  kind: arrow-file\n  path: out.arrow\n"
	cfg, err := config.Parse("test.yaml", []byte(file), []string{"sink.kind=null"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(cfg)
	if err == nil || !strings.Contains(err.Error(), `unknown field "path"`) ||
		!strings.Contains(err.Error(), "--set sink.kind=null changes the kind only") ||
		!strings.Contains(err.Error(), "--set 'sink={kind: null}'") {
		t.Fatalf("want an unknown-field error explaining the kept keys, got %v", err)
	}
	j := build(t, file, "sink={kind: null}")
	if kind, err := sinkKind(j.Config); err != nil || kind != "null" {
		t.Fatalf("sink={kind: null}: kind %q, %v", kind, err)
	}
}

// writeTar writes members (name -> bytes) in order; truncate cuts the file to that many bytes.
func writeTar(t *testing.T, path string, members [][2]string, truncate int) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m[0], Mode: 0o644, Size: int64(len(m[1])), ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(m[1]))
	}
	tw.Close()
	b := buf.Bytes()
	if truncate > 0 {
		b = b[:truncate]
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func testImage(w, h int, enc string) string {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 3), uint8(y * 5), uint8(x + y), 255})
		}
	}
	var buf bytes.Buffer
	if enc == "png" {
		png.Encode(&buf, img)
	} else {
		jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	}
	return buf.String()
}

// Every kind of bad input is counted by reason with its key, and read = emitted + skipped.
func TestBadInputIsCountedNotLost(t *testing.T) {
	dir := t.TempDir()
	good := testImage(64, 48, "jpeg")
	writeTar(t, filepath.Join(dir, "s-0.tar"), [][2]string{
		{"000.jpg", good}, {"000.cls", "1"},
		{"001.jpg", good[:len(good)/3]}, {"001.cls", "2"}, // truncated JPEG
		{"002.jpg", testImage(40, 40, "png")}, {"002.cls", "3"}, // a PNG named .jpg: fine
		{"003.jpg", ""}, {"003.cls", "4"}, // zero bytes
		{"004.jpg", good},                                          // no label
		{"005.cls", "5"},                                           // no image
		{"006.jpg", testImage(400, 300, "jpeg")}, {"006.cls", "6"}, // over max_pixels
		{"007.jpg", "\xff\xd8\xff\xe0 this is not really a jpeg"}, {"007.cls", "7"},
		{"008.jpg", good}, {"008.cls", "8"},
	}, 0)
	// A tar cut in the middle of its second sample.
	var members [][2]string
	for i := 0; i < 4; i++ {
		members = append(members, [2]string{fmt.Sprintf("1%02d.jpg", i), good}, [2]string{fmt.Sprintf("1%02d.cls", i), "0"})
	}
	padded := (len(good) + 511) / 512 * 512
	// Headers and data of 100.jpg and 100.cls, 101.jpg's header, then 300 bytes of its data.
	writeTar(t, filepath.Join(dir, "s-1.tar"), members, 512+padded+512+512+512+300)
	yaml := fmt.Sprintf(`source:
  shards: %q
  shuffle_shards: false
decode:
  max_pixels: 10000
views: {recipe: mocov2, size: 32}
batch:
  size: 2
memory_budget: 64MiB
`, filepath.Join(dir, "s-{0..2}.tar")) // s-2.tar is missing
	sum, err := build(t, yaml).Run(context.Background(), Options{Sink: &rowSink{groups: []string{"q", "k"}}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Read != sum.Emitted+sum.Skipped.Total {
		t.Fatalf("read %d != emitted %d + skipped %d", sum.Read, sum.Emitted, sum.Skipped.Total)
	}
	want := map[string]string{
		pipeline.ReasonCorrupt:  "001",
		pipeline.ReasonEmpty:    "003",
		pipeline.ReasonNoLabel:  "004",
		pipeline.ReasonNoImage:  "005",
		pipeline.ReasonTooLarge: "006",
	}
	for reason, key := range want {
		c := sum.Skipped.Reasons[reason]
		if c == nil || !strings.Contains(strings.Join(c.Keys, ","), key) {
			t.Errorf("reason %s: want key %s, got %+v", reason, key, c)
		}
	}
	if c := sum.Skipped.Reasons[pipeline.ReasonCorrupt]; c == nil || c.Count != 2 {
		t.Errorf("want 2 corrupt images (001 truncated, 007 garbage), got %+v", c)
	}
	// 000, 002, 008 and 100 (before the cut) are good.
	if sum.Emitted != 4 {
		t.Errorf("emitted %d, want 4", sum.Emitted)
	}
	var shards []string
	for _, s := range sum.Skipped.Shards {
		shards = append(shards, filepath.Base(s.Shard)+":"+s.Reason)
	}
	if got := strings.Join(shards, ","); !strings.Contains(got, "s-1.tar:truncated_shard") || !strings.Contains(got, "s-2.tar:missing_shard") {
		t.Errorf("shard errors %q", got)
	}

	// Under on_error: fail the first bad sample stops the run and is named.
	_, err = build(t, yaml, "on_error=fail").Run(context.Background(), Options{Sink: &rowSink{groups: []string{"q", "k"}}})
	var se *pipeline.SampleError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "s-0.tar") {
		t.Fatalf("want a sample error naming the shard, got %v", err)
	}
}

// The example through the socket sink to two Go consumers (ranks): together they get every
// emitted row, each a disjoint part.
func TestSocketSinkServesTwoRanks(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p.sock")
	j := build(t, exampleYAML(t)+fmt.Sprintf("sink:\n  kind: arrow-socket\n  path: unix://%s\n  world_size: 2\n", sock))
	type result struct {
		rows int64
		err  error
	}
	got := make(chan result, 2)
	for rank := 0; rank < 2; rank++ {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var rd *arrowsocket.Reader
			var err error
			for i := 0; i < 200; i++ { // the sink listens once the run starts
				if rd, err = arrowsocket.Dial(ctx, "unix://"+sock, rank, 2); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err != nil {
				got <- result{err: err}
				return
			}
			defer rd.Close()
			var n int64
			for rd.Next() {
				n += rd.RecordBatch().NumRows()
			}
			got <- result{rows: n, err: rd.Err()}
		}()
	}
	sum, err := j.Run(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for i := 0; i < 2; i++ {
		r := <-got
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.rows == 0 {
			t.Fatal("a rank got nothing")
		}
		total += r.rows
	}
	if total != sum.Emitted {
		t.Fatalf("consumers got %d rows, the run emitted %d", total, sum.Emitted)
	}
}

// The MoCo trainer sink on the CPU: it trains on what the pipeline feeds it, checkpoints the
// pipeline's position with the model, and a second run resumes from that checkpoint where the
// first stopped.
func TestMoCoSinkTrainsAndResumesFromItsCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small convnet for a few steps on the CPU")
	}
	root := repo.TestRoot(t)
	yaml := fmt.Sprintf(`source:
  shards: %q
epochs: 1
views:
  groups:
    - {name: q, size: 28, ops: [{op: random_resized_crop}, {op: hflip, p: 0.5}]}
    - {name: k, size: 28, ops: [{op: random_resized_crop}, {op: hflip, p: 0.5}]}
batch: {size: 32}
sink:
  kind: moco
  backend: go
  encoder: small
  stem: cifar
  queue: 64
  bn_splits: 2
  log_every: 0
  checkpoint_dir: %q
memory_budget: 128MiB
`, filepath.Join(root, "testdata/fashion-mnist/train-000000.tar.gz"), t.TempDir())
	first, err := build(t, yaml).Run(context.Background(), Options{MaxSamples: 64})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(first.Sink["steps"]) != "2" || first.Position.(source.Position) != (source.Position{Epoch: 0, Offset: 64}) {
		t.Fatalf("first run: steps %v, position %+v", first.Sink["steps"], first.Position)
	}
	second, err := build(t, yaml).Run(context.Background(), Options{MaxSamples: 64})
	if err != nil {
		t.Fatal(err)
	}
	// Resumed from the checkpoint: two more steps, and the data goes on from sample 64.
	if fmt.Sprint(second.Sink["steps"]) != "4" || second.Position.(source.Position) != (source.Position{Epoch: 0, Offset: 128}) {
		t.Fatalf("second run: steps %v, position %+v", second.Sink["steps"], second.Position)
	}
}

// keepSink keeps the first batch it gets.
type keepSink struct{ rec arrow.RecordBatch }

func (s *keepSink) Write(_ context.Context, rec arrow.RecordBatch) error {
	if s.rec == nil {
		s.rec = rec
		return nil
	}
	rec.Release()
	return nil
}
func (s *keepSink) Close() error            { return nil }
func (s *keepSink) Summary() map[string]any { return nil }

// With keep_params, the params column says exactly how each view was made: replaying a row's
// parameters on its decoded source image gives the view's pixels.
func TestKeptParamsReplayTheViews(t *testing.T) {
	j := build(t, exampleYAML(t), "views={recipe: mocov2, size: 64, keep_params: true}", "epochs=1")
	snk := &keepSink{}
	if _, err := j.Run(context.Background(), Options{Sink: snk}); err != nil {
		t.Fatal(err)
	}
	rec := snk.rec
	defer rec.Release()
	keys := rec.Column(rec.Schema().FieldIndices(schema.ColKey)[0]).(*array.String)
	// The source images, by key, from the example shards.
	images := map[string][]byte{}
	for i := 0; i < 3; i++ {
		f, err := os.Open(filepath.Join(repo.TestRoot(t), fmt.Sprintf("testdata/imagenet-like/train-%06d.tar", i)))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(f)
		for h, err := tr.Next(); err == nil; h, err = tr.Next() {
			if strings.HasSuffix(h.Name, ".jpg") {
				b, _ := io.ReadAll(tr)
				images[strings.TrimSuffix(h.Name, ".jpg")] = b
			}
		}
		f.Close()
	}
	for _, group := range []string{"q", "k"} {
		pix, shape, err := schema.Uint8Tensor(rec, group)
		if err != nil {
			t.Fatal(err)
		}
		rowBytes := shape[1] * shape[2] * shape[3]
		for row := 0; row < int(rec.NumRows()); row++ {
			params, err := schema.ViewParams(rec, group, row)
			if err != nil || len(params) != 1 {
				t.Fatalf("row %d group %s: %v %v", row, group, params, err)
			}
			src, err := decode.DecodeBytes(images[keys.Value(row)], nil)
			if err != nil {
				t.Fatal(err)
			}
			view, err := augment.Replay(src, params[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(view.Pix, pix[row*rowBytes:(row+1)*rowBytes]) {
				t.Fatalf("row %d (%s) group %s: replaying %+v does not give the batch's view", row, keys.Value(row), group, params[0])
			}
		}
	}
}

// The config's default pixel limit is the decoder's own, so that messages and docs give one.
func TestOneDefaultMaxPixels(t *testing.T) {
	if config.DefaultMaxPixels != decode.DefaultMaxPixels {
		t.Fatalf("config.DefaultMaxPixels %d, decode.DefaultMaxPixels %d", config.DefaultMaxPixels, decode.DefaultMaxPixels)
	}
}

// Every config the repository ships (examples/, bench/) parses and builds, sink block included:
// one that rots would fail only when run, maybe on a borrowed GPU machine.
func TestShippedConfigsBuild(t *testing.T) {
	root := repo.TestRoot(t)
	var files []string
	for _, pattern := range []string{"examples/*.yaml", "bench/*.yaml", "bench/*/*.yaml"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 5 {
		t.Fatalf("found %d configs: %q", len(files), files)
	}
	for _, f := range files {
		cfg, err := config.Load(f, nil)
		if err == nil {
			_, err = Build(cfg)
		}
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// stateSink records the states the runtime hands a stateful sink, and when.
type stateSink struct {
	rowSink
	states []string // each state, then "write" at each Write
}

func (s *stateSink) SetPipelineState(state []byte) { s.states = append(s.states, string(state)) }
func (s *stateSink) PipelineState() []byte         { return nil }
func (s *stateSink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	s.states = append(s.states, "write")
	return s.rowSink.Write(ctx, rec)
}

// A stateful sink hears where the run starts, then before each batch the state right after
// it; a resumed run counts the stream's batches on from StartBatches, and so does OnDelivered
// (the --state file).
func TestStatefulSinkHearsEachBatchsPlaceInTheStream(t *testing.T) {
	start := source.Position{Epoch: 0, Offset: 17}
	snk := &stateSink{rowSink: rowSink{groups: []string{"q", "k"}}}
	var got delivered
	_, err := build(t, exampleYAML(t)).Run(context.Background(),
		Options{Sink: snk, Start: &start, StartBatches: 2, OnDelivered: got.record, MaxSamples: 24})
	if err != nil {
		t.Fatal(err)
	}
	// 24 samples from sample 17 (none of them bad): three batches of 8.
	want := []string{`{"epoch":0,"offset":17,"batches":2}`,
		`{"epoch":0,"offset":25,"batches":3}`, "write",
		`{"epoch":0,"offset":33,"batches":4}`, "write",
		`{"epoch":0,"offset":41,"batches":5}`, "write"}
	if strings.Join(snk.states, " ") != strings.Join(want, " ") {
		t.Fatalf("the sink heard\n%s\nwant\n%s", strings.Join(snk.states, "\n"), strings.Join(want, "\n"))
	}
	if got.batches != 5 || got.pos != (source.Position{Epoch: 0, Offset: 41}) {
		t.Fatalf("OnDelivered last reported %d batches at %v, want 5 at offset 41", got.batches, got.pos)
	}
}
