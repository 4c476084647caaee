package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"pipeline/job"
	"pipeline/monitor"
	"pipeline/pipeline"
	"pipeline/pipeline/config"
	"pipeline/stages/source"
)

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sets listFlag
	fs.Var(&sets, "set", "override a config key: --set source.shards=/data/x-{0..3}.tar (repeatable)")
	summaryJSON := fs.String("summary-json", "", "write the end-of-run summary as JSON to this file")
	metrics := fs.String("metrics", "", "append live counters as JSON lines to this file, every --interval")
	resume := fs.String("resume", "", "resume from a state file written by --state")
	state := fs.String("state", "", "keep the pipeline's position in this file, rewritten after every batch the sink accepted")
	progress := fs.String("progress", "auto", "progress display: auto, bar, log or off")
	interval := fs.Duration("interval", time.Second, "how often the progress line and --metrics are updated")
	plotFile := fs.String("plot", "", "moco sink: draw the training report to this PNG (CSV beside it), redrawn every epoch; default checkpoint_dir/training.png")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pipeline run FILE.yaml [--set key=value ...] [flags]")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one config file, got %d arguments", len(pos))
	}
	if *interval <= 0 {
		return usagef("--interval must be positive")
	}
	switch *progress {
	case "auto", "bar", "log", "off":
	default:
		return usagef("--progress must be auto, bar, log or off, not %q", *progress)
	}
	// The summary is written after the run, which may have trained for hours: its folder is
	// made now (as the arrow-file sink makes its own), and one that cannot be stops the run
	// before it starts.
	for _, f := range []struct{ flag, path string }{{"--summary-json", *summaryJSON}, {"--state", *state}} {
		if f.path == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return fmt.Errorf("%s %s: %w", f.flag, f.path, err)
		}
	}
	if *plotFile != "" {
		sets = append(sets, "sink.plot="+*plotFile) // the training report is the moco sink's
	}
	cfg, err := config.Load(pos[0], sets)
	if err != nil {
		return err
	}
	if err := checkPlotSink(cfg, *plotFile); err != nil {
		return err
	}
	j, err := job.Build(cfg)
	if err != nil {
		return err
	}
	if *progress != "off" {
		fmt.Fprintln(stderr, j.Plan())
	}
	opt := job.Options{}
	if *resume != "" {
		st, err := readState(*resume)
		if err != nil {
			return err
		}
		if err := checkResumeOutput(cfg); err != nil {
			return err
		}
		p := st.Position
		opt.Start, opt.StartBatches = &p, st.Batches
		fmt.Fprintf(stderr, "resuming at epoch %d, sample %d of that epoch, batch %d of the stream next\n",
			p.Epoch, p.Offset, st.Batches)
	}
	ctx, stop, cancel := signalContext(stderr)
	defer cancel()
	opt.Stop = stop

	var metricsFile *os.File
	if *metrics != "" {
		if metricsFile, err = os.OpenFile(*metrics, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return err
		}
		defer metricsFile.Close()
	}
	disp := newProgress(stderr, *progress, cfg.Epochs)
	opt.OnDelivered = func(batches int64, pos source.Position) error {
		disp.delivered(pos)
		if *state == "" {
			return nil
		}
		return writeState(*state, batches, pos)
	}
	var mon *monitor.Monitor
	opt.OnStart = func(r *pipeline.Run, b *pipeline.Budget) {
		mon = monitor.Start(ctx, r, b, *interval, func(s monitor.Sample) {
			disp.update(s)
			if metricsFile != nil {
				line, _ := json.Marshal(s)
				metricsFile.Write(append(line, '\n'))
			}
		})
	}
	sum, runErr := j.Run(ctx, opt)
	if mon != nil {
		mon.Finish() // a last metrics line for the tail, so it ends at the run's counts
	}
	disp.finish()
	if sum == nil {
		return runErr
	}
	printSummary(stderr, sum)
	if *summaryJSON != "" {
		if err := sum.WriteJSON(*summaryJSON); err != nil {
			return err
		}
	}
	if *state != "" {
		fmt.Fprintf(stderr, "state in %s (resume with --resume %s)\n", *state, *state)
	}
	return runErr
}

// signalContext: the first SIGINT or SIGTERM closes stop (graceful: the sink is flushed), the
// second cancels the context (the run ends at once). A stage stuck in a call that ignores
// cancellation (a sink blocked on a full pipe) must not keep the process alive after that:
// if the run has not ended quitGrace after the second signal, or on a third, the process exits
// with status 130 without flushing (the --state file still names a consistent position).
func signalContext(stderr io.Writer) (context.Context, <-chan struct{}, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	finished := make(chan struct{})
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
			fmt.Fprintln(stderr, "\nstopping: finishing the samples in flight and flushing the sink (signal again to quit at once)")
			close(stop)
		case <-finished:
			return
		}
		select {
		case <-sig:
			fmt.Fprintln(stderr, "\nquitting")
			cancel()
		case <-finished:
			return
		}
		select {
		case <-sig:
		case <-time.After(quitGrace):
		case <-finished:
			return
		}
		fmt.Fprintln(stderr, "pipeline: the run did not stop after the second signal; exiting without flushing the sink")
		os.Exit(130)
	}()
	return ctx, stop, func() { signal.Stop(sig); close(finished); cancel() }
}

// quitGrace is how long the run may take to wind down after the second signal.
const quitGrace = 2 * time.Second

func printSummary(w io.Writer, s *job.Summary) {
	fmt.Fprintf(w, "read %d, emitted %d in %d batches, skipped %d, in %.1fs (%.0f samples/s)",
		s.Read, s.Emitted, s.Batches, s.Skipped.Total, s.Seconds, s.SamplesPerS)
	if s.Stopped != "" {
		fmt.Fprintf(w, ", stopped early (%s)", s.Stopped)
	}
	fmt.Fprintln(w)
	reasons := make([]string, 0, len(s.Skipped.Reasons))
	for r := range s.Skipped.Reasons {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		c := s.Skipped.Reasons[r]
		keys := c.Keys
		more := ""
		if len(keys) > 5 {
			keys, more = keys[:5], fmt.Sprintf(" and %d more", c.Count-5)
		}
		fmt.Fprintf(w, "  skipped %d %s: %s%s\n", c.Count, r, strings.Join(keys, ", "), more)
	}
	for _, sh := range s.Skipped.Shards {
		fmt.Fprintf(w, "  %s\n", sh.Error) // "shard NAME: reason: cause"
	}
	fmt.Fprintf(w, "memory: peak %s of a %s budget; decoder %s\n",
		config.ByteSize(s.MemoryPeak), config.ByteSize(s.MemoryBudget), s.Decoder)
	if len(s.Sink) > 0 {
		b, _ := json.Marshal(s.Sink)
		fmt.Fprintf(w, "sink: %s\n", b)
	}
}

// checkResumeOutput refuses to resume into an arrow-file sink whose file already holds data:
// the sink truncates its file, and that file is most likely the interrupted run's output, the
// batches before the resume point.
func checkResumeOutput(cfg *config.Config) error {
	var head struct {
		Kind string `yaml:"kind"`
		Path string `yaml:"path"`
	}
	if err := config.DecodeNodeLoose(cfg.File(), cfg.Sink, &head); err != nil {
		return err
	}
	if head.Kind != "arrow-file" || head.Path == "" || head.Path == "-" {
		return nil
	}
	if fi, err := os.Stat(head.Path); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		return fmt.Errorf("--resume: sink.path %s already holds %d bytes, most likely the batches before the resume point, and the sink would overwrite it; write the rest to another file (--set sink.path=OTHER.arrow) or move it away first",
			head.Path, fi.Size())
	}
	return nil
}

// checkPlotSink refuses --plot for a sink that keeps no training report, before the sink
// decoder would call `plot` an unknown key.
func checkPlotSink(cfg *config.Config, plot string) error {
	if plot == "" {
		return nil
	}
	var head struct {
		Kind string `yaml:"kind"`
	}
	if err := config.DecodeNodeLoose(cfg.File(), cfg.Sink, &head); err != nil {
		return err
	}
	if head.Kind == "" {
		head.Kind = "null" // the default sink
	}
	if head.Kind != "moco" {
		return usagef("--plot draws the moco sink's training report, and this sink is %q (pipeline profile --plot draws the pipeline)", head.Kind)
	}
	return nil
}

func readState(path string) (runState, error) {
	var st runState
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("state file %s: %w", path, err)
	}
	if st.Batches < 0 {
		return st, fmt.Errorf("state file %s: batches %d is negative", path, st.Batches)
	}
	return st, nil
}

// runState is the --state file: the source position right after the last batch the sink
// accepted, and how many batches of the stream that was (counting those of the runs it resumed
// from: a resumed run numbers its batches on from there). A run killed between the sink's
// write and the state's rewrite leaves one batch more in the sink's output than the state
// counts; a consumer that resumes keeps the batches up to the count. The socket and Flight
// sinks' batches carry such a state (pipeline.round_start), for a trainer to resume from.
type runState struct {
	Position source.Position `json:"position"`
	Batches  int64           `json:"batches"`
}

func writeState(path string, batches int64, pos source.Position) error {
	b, err := json.MarshalIndent(runState{Position: pos, Batches: batches}, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
