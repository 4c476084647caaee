package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"text/tabwriter"
	"time"

	"pipeline/pipeline"
	"pipeline/pipeline/config"
	"pipeline/pipeline/job"
	"pipeline/pipeline/monitor"
	"pipeline/sink/null"
)

// profileReport is `pipeline profile --json`.
type profileReport struct {
	Seconds          float64             `json:"seconds"`
	Cores            int                 `json:"cores"`
	SamplesPerS      float64             `json:"samples_per_s"`
	Stages           []profileStage      `json:"stages"`
	Ops              []job.OpReport      `json:"ops,omitempty"`
	Bottleneck       string              `json:"bottleneck"`
	SuggestedWorkers map[string]int      `json:"suggested_workers"`
	PredictedPerS    float64             `json:"predicted_samples_per_s"`
	PredictedLimit   string              `json:"predicted_limit"`
	Timeline         []monitor.Sample    `json:"timeline,omitempty"`
	Skipped          pipeline.SkipReport `json:"skipped"`
}

type profileStage struct {
	job.StageReport
	Queue      float64 `json:"queue"`           // mean output-queue occupancy, 0..1
	CPUPerItem float64 `json:"cpu_ms_per_item"` // CPU time an item costs this stage
}

func cmdProfile(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sets listFlag
	fs.Var(&sets, "set", "override a config key (repeatable)")
	duration := fs.Duration("duration", 30*time.Second, "how long to run")
	asJSON := fs.Bool("json", false, "print one JSON object instead of tables")
	sinkMode := fs.String("sink", "null", "null: measure the input pipeline alone; config: use the configured sink")
	cpuprofile := fs.String("cpuprofile", "", "write a Go CPU profile to this file")
	traceFile := fs.String("trace", "", "write a Go execution trace to this file")
	plotFile := fs.String("plot", "", "draw throughput and queue occupancy per stage over time to this PNG")
	cores := fs.Int("cores", runtime.NumCPU(), "cores to size the suggested worker split for")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pipeline profile FILE.yaml [--duration 30s] [--json] [--sink null|config] [flags]")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one config file")
	}
	if *sinkMode != "null" && *sinkMode != "config" {
		return usagef("--sink must be null or config, not %q", *sinkMode)
	}
	cfg, err := config.Load(pos[0], sets)
	if err != nil {
		return err
	}
	j, err := job.Build(cfg)
	if err != nil {
		return err
	}
	opt := job.Options{Duration: *duration}
	if *sinkMode == "null" {
		opt.Sink = null.New(null.Config{})
	}
	ctx, stop, cancel := signalContext(stderr)
	defer cancel()
	opt.Stop = stop
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	var mon *monitor.Monitor
	opt.OnStart = func(r *pipeline.Run, b *pipeline.Budget) {
		mon = monitor.Start(ctx, r, b, 250*time.Millisecond, nil)
	}
	if !*asJSON {
		fmt.Fprintf(stderr, "profiling %s for %s (decode %d, augment %d workers, %d cores)...\n",
			pos[0], *duration, j.Workers.Decode, j.Workers.Augment, runtime.NumCPU())
	}
	cpu0 := cpuTime()
	sum, runErr := j.Run(ctx, opt)
	cpu := cpuTime() - cpu0
	if mon != nil {
		mon.Stop()
	}
	if sum == nil {
		return runErr
	}
	if runErr != nil {
		return runErr
	}
	rep := analyse(sum, mon, cpu, *cores)
	rep.Ops = j.OpReports(sum.Seconds)
	if *plotFile != "" {
		if err := monitor.Plot(*plotFile, rep.Timeline); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(rep)
	}
	rep.Timeline = nil
	printProfile(stdout, rep, j.Workers)
	return nil
}

// analyse turns a profile run into per-stage costs, the bottleneck and a suggested split.
func analyse(sum *job.Summary, mon *monitor.Monitor, cpu time.Duration, cores int) profileReport {
	rep := profileReport{Seconds: sum.Seconds, Cores: cores, SamplesPerS: sum.SamplesPerS, Skipped: sum.Skipped}
	if mon != nil {
		rep.Timeline = mon.Samples()
	}
	// Busy time is wall time; with more workers than cores it includes waiting for a core.
	// Scale the CPU stages' busy time so that together they add up to the CPU time used.
	var busyCPU float64
	for _, s := range sum.Stages {
		if s.Name != "sink" {
			busyCPU += s.Busy * sum.Seconds * float64(max(s.Workers, 1))
		}
	}
	scale := 1.0
	if busyCPU > cpu.Seconds() && busyCPU > 0 {
		scale = cpu.Seconds() / busyCPU
	}
	var costs []monitor.StageCost
	for _, s := range sum.Stages {
		ps := profileStage{StageReport: s}
		for _, t := range rep.Timeline {
			for _, ts := range t.Stages {
				if ts.Name == s.Name {
					ps.Queue += ts.Queue / float64(len(rep.Timeline))
				}
			}
		}
		perItem := 0.0
		if s.Out > 0 {
			perItem = s.Busy * sum.Seconds * float64(max(s.Workers, 1)) / float64(s.Out)
		}
		isCPU := s.Name != "sink"
		if isCPU {
			perItem *= scale
		}
		ps.CPUPerItem = perItem * 1e3
		rep.Stages = append(rep.Stages, ps)
		cost := monitor.StageCost{Name: s.Name, Seconds: perItem, CPU: isCPU,
			Parallel: s.Name == "decode" || s.Name == "augment"}
		if s.Name == "sink" && s.Out > 0 && sum.Emitted > 0 {
			cost.Seconds = perItem * float64(s.Out) / float64(sum.Emitted) // per sample, not per batch
		}
		costs = append(costs, cost)
	}
	var samples []monitor.StageSample
	for _, s := range sum.Stages {
		samples = append(samples, monitor.StageSample{Name: s.Name, Busy: s.Busy})
	}
	rep.Bottleneck = monitor.Bottleneck(samples)
	split := monitor.Suggest(costs, cores)
	rep.SuggestedWorkers, rep.PredictedPerS, rep.PredictedLimit = split.Workers, split.ItemsPerS, split.Bottleneck
	return rep
}

func printProfile(w io.Writer, rep profileReport, cur job.Workers) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\tworkers\titems/s\tbusy\tstarved\tblocked\tqueue\tp50 ms\tp99 ms\tcpu ms/item\t")
	for _, s := range rep.Stages {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f%%\t%.0f%%\t%.0f%%\t%.0f%%\t%.2f\t%.2f\t%.3f\t\n", s.Name, s.Workers, s.ItemsPerS,
			100*s.Busy, 100*s.Starved, 100*s.Blocked, 100*s.Queue, s.LatencyP50, s.LatencyP99, s.CPUPerItem)
	}
	tw.Flush()
	if len(rep.Ops) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "augment op\tcalls/s\tms/call\tshare\t")
		for _, o := range rep.Ops {
			fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.0f%%\t\n", o.Name, o.CallsPerS, o.MsPerCall, 100*o.Share)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nthroughput: %.0f samples/s over %.1fs\n", rep.SamplesPerS, rep.Seconds)
	fmt.Fprintf(w, "bottleneck: %s\n", rep.Bottleneck)
	fmt.Fprintf(w, "suggested workers for %d cores: decode %d, augment %d (now decode %d, augment %d); predicted %.0f samples/s, then limited by %s\n",
		rep.Cores, rep.SuggestedWorkers["decode"], rep.SuggestedWorkers["augment"], cur.Decode, cur.Augment,
		rep.PredictedPerS, rep.PredictedLimit)
	fmt.Fprintf(w, "try: --set workers.decode=%d --set workers.augment=%d\n", rep.SuggestedWorkers["decode"], rep.SuggestedWorkers["augment"])
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
