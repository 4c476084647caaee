package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"pipeline/internal/repo"
	"pipeline/job"
	"pipeline/schema"
)

// childArgsEnv makes the test binary act as the pipeline command: the tests below re-exec
// themselves with it, so that a real process can be killed and signalled.
const childArgsEnv = "PIPELINE_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgsEnv); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			fmt.Fprintln(os.Stderr, "bad", childArgsEnv, err)
			os.Exit(2)
		}
		os.Exit(runMain(argv, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// child is a `pipeline` process run by a test.
type child struct {
	cmd    *exec.Cmd
	stderr lockedBuffer
	done   chan error
}

func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	argv, _ := json.Marshal(args)
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$"), done: make(chan error, 1)}
	c.cmd.Env = append(os.Environ(), childArgsEnv+"="+string(argv))
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// wait waits for the child's exit and returns its status, failing the test after limit.
func (c *child) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case err := <-c.done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return c.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("pipeline did not exit within %v; stderr:\n%s", limit, c.stderr.String())
		return -1
	}
}

// waitForStderr waits until the child has written want to its stderr.
func (c *child) waitForStderr(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.stderr.String(), want) {
		if time.Now().After(deadline) || c.exited() {
			t.Fatalf("no %q on stderr; stderr:\n%s", want, c.stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer that the test reads while the child writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (c *child) exited() bool {
	select {
	case err := <-c.done:
		c.done <- err
		return true
	default:
		return false
	}
}

// writeConfig writes a small run over the bundled shards: epochs*50 samples, in batches of 8,
// written as an Arrow stream. It is a few hundred milliseconds long, long enough to be
// interrupted.
func writeConfig(t *testing.T, dir string, epochs int) string {
	t.Helper()
	shards := filepath.Join(repo.TestRoot(t), "testdata/imagenet-like/train-{000000..000002}.tar")
	yaml := fmt.Sprintf(`source:
  shards: %q
  shuffle_buffer: 16
epochs: %d
seed: 5
views: {recipe: mocov2, size: 64}
batch:
  size: 8
sink:
  kind: arrow-file
  path: %q
workers: {decode: 1, augment: 1}
memory_budget: 64MiB
`, shards, epochs, filepath.Join(dir, "out.arrow"))
	path := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// streamRows reads an Arrow IPC stream and hashes every row (key and the pixels of both view
// groups), batch by batch. cut allows the stream to end early, as a killed writer leaves it:
// the batches before the cut are returned.
func streamRows(t *testing.T, path string, cut bool) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ipc.NewReader(f)
	if err != nil {
		if cut && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return nil // killed before the schema reached the file
		}
		t.Fatalf("%s: %v", path, err)
	}
	defer r.Release()
	var batches [][]string
	for r.Next() {
		rec := r.RecordBatch()
		keys := rec.Column(rec.Schema().FieldIndices(schema.ColKey)[0]).(*array.String)
		var groups []*schema.TensorArray
		for _, g := range []string{"q", "k"} {
			col, err := schema.Tensor(rec, g)
			if err != nil {
				t.Fatal(err)
			}
			groups = append(groups, col)
		}
		var rows []string
		for i := 0; i < int(rec.NumRows()); i++ {
			h := sha256.New()
			h.Write([]byte(keys.Value(i)))
			for _, g := range groups {
				h.Write(g.RowBytes(i))
			}
			rows = append(rows, keys.Value(i)+":"+hex.EncodeToString(h.Sum(nil))[:16])
		}
		batches = append(batches, rows)
	}
	if err := r.Err(); err != nil && !(cut && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF))) {
		t.Fatalf("%s: reading the stream after %d batches: %v", path, len(batches), err)
	}
	return batches
}

func flatten(batches [][]string) []string {
	var rows []string
	for _, b := range batches {
		rows = append(rows, b...)
	}
	return rows
}

type stateFile struct {
	Position struct {
		Epoch  int   `json:"epoch"`
		Offset int64 `json:"offset"`
	} `json:"position"`
	Batches int64 `json:"batches"`
}

// readState reads the --state file; ok is false while it does not exist yet.
func readStateFile(t *testing.T, path string) (stateFile, bool) {
	t.Helper()
	var st stateFile
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state file %s is not complete JSON (%v): %q", path, err, b)
	}
	return st, true
}

// waitForBatches polls the state file until it counts at least n batches.
func waitForBatches(t *testing.T, c *child, path string, n int64) stateFile {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st, ok := readStateFile(t, path); ok && st.Batches >= n {
			return st
		}
		if c.exited() {
			t.Fatalf("pipeline ended before writing %d batches; stderr:\n%s", n, c.stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no state with %d batches after 30s; stderr:\n%s", n, c.stderr.String())
	return stateFile{}
}

// A run killed with SIGKILL mid-epoch and resumed from its state file delivers, together
// with the first run's batches that the state counts, exactly the rows of an uninterrupted
// run, pixels included.
func TestKillAndResumeIsExact(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline three times")
	}
	const epochs = 6 // 300 samples, 38 batches
	dir := t.TempDir()
	cfg := writeConfig(t, dir, epochs)
	out := func(name string) string { return "sink.path=" + filepath.Join(dir, name) }

	full := startChild(t, "run", cfg, "--progress", "off", "--set", out("full.arrow"))
	if code := full.wait(t, time.Minute); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, full.stderr.String())
	}
	want := flatten(streamRows(t, filepath.Join(dir, "full.arrow"), false))
	if len(want) != epochs*50 {
		t.Fatalf("uninterrupted run wrote %d rows, want %d", len(want), epochs*50)
	}

	state := filepath.Join(dir, "state.json")
	killed := startChild(t, "run", cfg, "--progress", "off", "--set", out("first.arrow"), "--state", state)
	waitForBatches(t, killed, state, 4)
	if err := killed.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed.wait(t, 10*time.Second)
	st, _ := readStateFile(t, state)
	firstBatches := streamRows(t, filepath.Join(dir, "first.arrow"), true)
	t.Logf("killed at epoch %d offset %d after %d batches (the file holds %d)", st.Position.Epoch, st.Position.Offset,
		st.Batches, len(firstBatches))
	if st.Batches*8 >= int64(len(want)) {
		t.Fatalf("the run finished before it was killed (%d batches): nothing was tested", st.Batches)
	}
	// The sink writes a batch before the state counts it: the file may hold one batch more.
	if n := int64(len(firstBatches)); n < st.Batches || n > st.Batches+1 {
		t.Fatalf("the killed run's file holds %d complete batches, its state counts %d", n, st.Batches)
	}
	got := flatten(firstBatches[:st.Batches])

	resumed := startChild(t, "run", cfg, "--progress", "off", "--set", out("rest.arrow"), "--resume", state)
	if code := resumed.wait(t, time.Minute); code != 0 {
		t.Fatalf("resumed run: exit %d\n%s", code, resumed.stderr.String())
	}
	rest := flatten(streamRows(t, filepath.Join(dir, "rest.arrow"), false))
	got = append(got, rest...)
	if len(got) != len(want) {
		t.Fatalf("first run %d rows + resumed run %d rows = %d, the uninterrupted run has %d",
			len(got)-len(rest), len(rest), len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d differs (the first run delivered %d rows): got %s, want %s", i, len(got)-len(rest), got[i], want[i])
		}
	}
}

// The first SIGINT stops the run gracefully: exit 0, a complete Arrow stream, and a state
// and summary that count exactly what the stream holds.
func TestSigintFlushesAndMatchesState(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	dir := t.TempDir()
	cfg := writeConfig(t, dir, 20)
	state := filepath.Join(dir, "state.json")
	summary := filepath.Join(dir, "summary.json")
	c := startChild(t, "run", cfg, "--progress", "off", "--state", state, "--summary-json", summary)
	waitForBatches(t, c, state, 3)
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGINT, want 0; stderr:\n%s", code, c.stderr.String())
	}
	batches := streamRows(t, filepath.Join(dir, "out.arrow"), false) // must end with its end-of-stream marker
	st, _ := readStateFile(t, state)
	if int64(len(batches)) != st.Batches {
		t.Fatalf("the stream holds %d batches, the state counts %d", len(batches), st.Batches)
	}
	var sum job.Summary
	b, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	rows := int64(len(flatten(batches)))
	if sum.Stopped != "signal" || sum.Batches != st.Batches || sum.Emitted != rows || sum.Read != sum.Emitted+sum.Skipped.Total {
		t.Fatalf("summary stopped %q, %d batches, read %d, emitted %d, skipped %d; the stream holds %d batches, %d rows",
			sum.Stopped, sum.Batches, sum.Read, sum.Emitted, sum.Skipped.Total, len(batches), rows)
	}
	pos, _ := json.Marshal(sum.Position)
	want, _ := json.Marshal(st.Position)
	if string(pos) != string(want) {
		t.Fatalf("summary position %s, state position %s", pos, want)
	}
	if st.Batches*8 >= 20*50 {
		t.Fatal("the run ended before the signal: nothing was tested")
	}
}

// A second SIGINT quits at once, even when the sink is stuck in a write that ignores
// cancellation (here: an Arrow stream into a pipe nobody reads), where a graceful stop can
// never finish.
func TestSecondSigintQuitsWithAStuckSink(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline")
	}
	dir := t.TempDir()
	cfg := writeConfig(t, dir, 20)
	fifo := filepath.Join(dir, "stuck.arrow")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	pipe, err := os.OpenFile(fifo, os.O_RDWR, 0) // O_RDWR: never blocks, and the writer gets no EPIPE
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	c := startChild(t, "run", cfg, "--progress", "off", "--set", "sink.path="+fifo)
	// Once the sink has written something, its first batch (196 KB) is stuck in the 64 KiB pipe.
	pipe.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(pipe, make([]byte, 1)); err != nil {
		t.Fatalf("the sink never wrote: %v; stderr:\n%s", err, c.stderr.String())
	}
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	c.waitForStderr(t, "stopping")
	if c.exited() {
		t.Fatalf("a graceful stop finished with the sink stuck; stderr:\n%s", c.stderr.String())
	}
	start := time.Now()
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	code := c.wait(t, 10*time.Second)
	t.Logf("exit %d %v after the second signal", code, time.Since(start).Round(time.Millisecond))
	if code != 130 || !strings.Contains(c.stderr.String(), "quitting") {
		t.Fatalf("exit %d, want 130 and a quitting message; stderr:\n%s", code, c.stderr.String())
	}
}

// Resuming into the arrow-file the interrupted run wrote would truncate it and lose the
// batches before the resume point: the run is refused and the file kept; another sink.path
// resumes.
func TestResumeKeepsTheEarlierOutput(t *testing.T) {
	dir := t.TempDir()
	cfg, out, before := firstRun(t, dir)
	state := filepath.Join(dir, "state.json")
	if err := os.WriteFile(state, []byte(`{"position": {"epoch": 0, "offset": 16}, "batches": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"run", cfg, "--progress", "off", "--resume", state}, &stdout, &stderr); code != 1 {
		t.Fatalf("resuming into the earlier output: exit %d, want 1\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), out) || !strings.Contains(stderr.String(), "sink.path") {
		t.Fatalf("the error does not name the file and what to do:\n%s", stderr.String())
	}
	after, _ := os.ReadFile(out)
	if !bytes.Equal(before, after) {
		t.Fatalf("the earlier output changed: %d bytes before, %d after", len(before), len(after))
	}
	rest := filepath.Join(dir, "rest.arrow")
	runCLI(t, "run", cfg, "--progress", "off", "--resume", state, "--set", "sink.path="+rest)
	if n := len(flatten(streamRows(t, rest, false))); n != 50-16 {
		t.Fatalf("the resumed run wrote %d rows, want %d", n, 50-16)
	}
}

// A source that cannot open (a shard pattern that matches nothing) stops the run before the
// arrow-file sink truncates the file an earlier run wrote.
func TestBadSourceKeepsTheEarlierOutput(t *testing.T) {
	dir := t.TempDir()
	cfg, out, before := firstRun(t, dir)
	var stdout, stderr bytes.Buffer
	args := []string{"run", cfg, "--progress", "off", "--set", "source.shards=" + filepath.Join(dir, "missing-*.tar")}
	if code := runMain(args, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "matches no file") {
		t.Fatalf("the error does not say the pattern matches nothing:\n%s", stderr.String())
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Fatalf("the earlier output changed: %d bytes before, %d after", len(before), len(after))
	}
}

// A run of which every shard is missing skips them, as any bad shard, but then fails: nothing
// reached the sink. The arrow-file an earlier run wrote is left as it was.
func TestRunWithNothingReadFails(t *testing.T) {
	dir := t.TempDir()
	cfg, out, before := firstRun(t, dir)
	missing := filepath.Join(dir, "gone-000000.tar")
	var stdout, stderr bytes.Buffer
	args := []string{"run", cfg, "--progress", "off", "--set", "source.shards=" + missing}
	if code := runMain(args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "no sample reached the sink: shard "+missing+": missing_shard") {
		t.Fatalf("exit %d, want 1 and an error naming the missing shard:\n%s", code, stderr.String())
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Fatalf("the earlier output changed: %d bytes before, %d after", len(before), len(after))
	}
}

// firstRun runs the test config once into dir/out.arrow and returns the config, the file and
// its bytes.
func firstRun(t *testing.T, dir string) (cfg, out string, written []byte) {
	t.Helper()
	cfg = writeConfig(t, dir, 1)
	runCLI(t, "run", cfg, "--progress", "off")
	out = filepath.Join(dir, "out.arrow")
	written, err := os.ReadFile(out)
	if err != nil || len(written) == 0 {
		t.Fatalf("the first run wrote %d bytes (%v)", len(written), err)
	}
	return cfg, out, written
}
