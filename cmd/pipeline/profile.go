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
	"strings"
	"text/tabwriter"
	"time"

	"pipeline/job"
	"pipeline/monitor"
	"pipeline/pipeline"
	"pipeline/pipeline/config"
	"pipeline/plots"
	"pipeline/sink/null"
)

// profileReport is `pipeline profile --json`.
type profileReport struct {
	Config           string                 `json:"config"`
	Isolated         string                 `json:"isolated,omitempty"` // the stage run alone (--stage)
	Seconds          float64                `json:"seconds"`
	Cores            int                    `json:"cores"`
	Topology         monitor.Topology       `json:"topology"` // the machine's CPUs: SMT or not
	Samples          int64                  `json:"samples"`
	SamplesPerS      float64                `json:"samples_per_s"`
	CPUPerSample     float64                `json:"cpu_ms_per_sample"` // process CPU time, all stages and the GC
	CPUScale         float64                `json:"cpu_scale"`         // busy time to CPU time (1: no core contention)
	CoresUsed        float64                `json:"cores_used"`        // mean CPU time per second of the run
	Stages           []monitor.StageProfile `json:"stages"`
	Ops              []profileOp            `json:"ops,omitempty"`
	Bottleneck       string                 `json:"bottleneck"`
	Workers          map[string]int         `json:"workers"` // the run's worker counts
	SuggestedWorkers map[string]int         `json:"suggested_workers"`
	PredictedPerS    float64                `json:"predicted_samples_per_s"`
	PredictedLimit   string                 `json:"predicted_limit"`
	// PredictedTodayPerS is the same model's samples/s for the run's own workers.
	PredictedTodayPerS float64             `json:"predicted_today_samples_per_s"`
	Timeline           []monitor.Sample    `json:"timeline,omitempty"`
	Skipped            pipeline.SkipReport `json:"skipped"`
}

// profileOp is one augmentation op: its calls and its share of the augment workers' time.
type profileOp struct {
	job.OpReport
	Busy       float64 `json:"busy"`            // fraction of the augment workers' time
	CPUPerItem float64 `json:"cpu_ms_per_item"` // per sample, scaled like the stages
}

func cmdProfile(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sets listFlag
	fs.Var(&sets, "set", "override a config key (repeatable)")
	duration := fs.Duration("duration", 30*time.Second, "how long to run")
	asJSON := fs.Bool("json", false, "print one JSON object instead of tables")
	sinkMode := fs.String("sink", "null", "null: measure the input pipeline alone; config: use the configured sink")
	stage := fs.String("stage", "", "run one stage alone (decode or augment), fed from memory with the first --cache samples")
	cache := fs.Int("cache", job.DefaultIsolateCache, "samples kept in memory for --stage")
	cpuprofile := fs.String("cpuprofile", "", "write a Go CPU profile to this file")
	traceFile := fs.String("trace", "", "write a Go execution trace to this file")
	plotFile := fs.String("plot", "", "draw the profile (stage time, bottleneck, op shares, worker split, queues) to this PNG")
	interval := fs.Duration("interval", 250*time.Millisecond, "sampling interval of the timeline (--plot, --json)")
	cores := fs.Int("cores", runtime.GOMAXPROCS(0), "cores to size the suggested worker split for")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pipeline profile FILE.yaml [--duration 30s] [--json] [--sink null|config] [--stage decode|augment] [flags]")
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
	if *stage != "" && *stage != job.StageDecode && *stage != job.StageAugment {
		return usagef("--stage must be %s or %s, not %q", job.StageDecode, job.StageAugment, *stage)
	}
	if *duration <= 0 || *interval <= 0 || *cores < 1 {
		return usagef("--duration, --interval and --cores must be positive")
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
		stopProfile, err := startCPUProfile(*cpuprofile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	if *traceFile != "" {
		stopTrace, err := startTrace(*traceFile)
		if err != nil {
			return err
		}
		defer stopTrace()
	}
	// CPU time and the wait for a core count from OnStart: filling --stage's cache is not
	// part of the run.
	var mon *monitor.Monitor
	var run *pipeline.Run
	var cpu0, wait0 time.Duration
	opt.OnStart = func(r *pipeline.Run, b *pipeline.Budget) {
		cpu0, wait0 = monitor.ProcessCPU(), monitor.CoreWait()
		run = r
		mon = monitor.Start(ctx, r, b, *interval, nil)
	}
	if !*asJSON {
		what := "the whole pipeline"
		if *stage != "" {
			what = fmt.Sprintf("%s alone, on %d cached samples", *stage, *cache)
		}
		fmt.Fprintf(stderr, "profiling %s: %s for %s (decode %d, augment %d workers, GOMAXPROCS %d)...\n",
			pos[0], what, *duration, j.Workers.Decode, j.Workers.Augment, runtime.GOMAXPROCS(0))
	}
	var sum *job.Summary
	var runErr error
	if *stage != "" {
		sum, runErr = j.RunIsolated(ctx, *stage, *cache, opt)
	} else {
		sum, runErr = j.Run(ctx, opt)
	}
	cpu, wait := monitor.ProcessCPU()-cpu0, monitor.CoreWait()-wait0
	if mon != nil {
		mon.Stop()
	}
	if runErr != nil {
		return runErr
	}
	if sum.Emitted == 0 {
		detail := skipDetail(sum.Skipped)
		if detail == "" {
			detail = fmt.Sprintf(" in %.1fs (a longer --duration, or a source with data?)", sum.Seconds)
		}
		return fmt.Errorf("%s: nothing to profile, no sample went through the pipeline%s", pos[0], detail)
	}
	rep := analyse(j, sum, run, mon.Samples(), cpu, wait, *cores)
	rep.Config, rep.Isolated = pos[0], *stage
	// The report first: a plot that cannot be drawn (a run shorter than two --interval ticks)
	// must not throw away what the run measured.
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(rep); err != nil {
			return err
		}
	} else {
		printProfile(stdout, rep)
	}
	if *plotFile != "" {
		if err := plots.DrawProfile(*plotFile, profilePicture(rep, *interval)); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
	}
	return nil
}

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func startTrace(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}
	return func() { trace.Stop(); f.Close() }, nil
}

// analyse turns a profile run into per-stage and per-op figures, the bottleneck and a
// suggested worker split.
func analyse(j *job.Job, sum *job.Summary, r *pipeline.Run, timeline []monitor.Sample, cpu, coreWait time.Duration, cores int) profileReport {
	var snaps []pipeline.Snapshot
	for _, st := range r.Stages() {
		snaps = append(snaps, st.Snapshot())
	}
	elapsed := time.Duration(sum.Seconds * float64(time.Second))
	a := monitor.Analyse(monitor.RunTotals{Stages: snaps, Elapsed: elapsed, CPU: cpu, CoreWait: coreWait, Samples: sum.Emitted,
		Cores: runtime.GOMAXPROCS(0), SplitCores: cores}, timeline)
	rep := profileReport{Seconds: sum.Seconds, Cores: cores, Topology: monitor.MachineTopology(), Samples: sum.Emitted, SamplesPerS: sum.SamplesPerS,
		CPUPerSample: a.CPUPerItem, CPUScale: a.CPUScale, Stages: a.Stages, Bottleneck: a.Bottleneck,
		Workers: map[string]int{}, SuggestedWorkers: a.Split.Workers, PredictedPerS: a.Split.ItemsPerS,
		PredictedLimit: a.Split.Bottleneck, Timeline: timeline, Skipped: sum.Skipped}
	if sum.Seconds > 0 {
		rep.CoresUsed = cpu.Seconds() / sum.Seconds
	}
	augWorkers := 0
	for _, s := range snaps {
		rep.Workers[s.Name] = s.Workers
		if s.Name == "augment" {
			augWorkers = s.Workers
		}
	}
	if augWorkers > 0 && sum.Seconds > 0 {
		for _, o := range j.OpReports(sum.Seconds) {
			opTime := o.MsPerCall / 1e3 * float64(o.Calls) // seconds, summed over workers
			op := profileOp{OpReport: o, Busy: opTime / (sum.Seconds * float64(augWorkers))}
			if sum.Emitted > 0 {
				op.CPUPerItem = opTime * 1e3 / float64(sum.Emitted) * a.CPUScale
			}
			rep.Ops = append(rep.Ops, op)
		}
	}
	return rep
}

func printProfile(w io.Writer, rep profileReport) {
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
		fmt.Fprintln(tw, "augment op\tcalls/s\tbusy\tms/call\tcpu ms/item\tshare\t")
		for _, o := range rep.Ops {
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f%%\t%.3f\t%.3f\t%.0f%%\t\n", o.Name, o.CallsPerS, 100*o.Busy, o.MsPerCall, o.CPUPerItem, 100*o.Share)
		}
		tw.Flush()
	}
	what := "samples/s"
	if rep.Isolated != "" {
		what = "samples/s through " + rep.Isolated + " alone"
	}
	fmt.Fprintf(w, "\nthroughput: %.0f %s over %.1fs; %.2f ms of CPU a sample, %.2f cores used", rep.SamplesPerS, what, rep.Seconds, rep.CPUPerSample, rep.CoresUsed)
	if rep.CPUScale < 1 {
		fmt.Fprintf(w, "; busy times scaled by %.2f to take out the wait for a core", rep.CPUScale)
	}
	if rep.CoresUsed < 0.75*float64(rep.Cores) && rep.PredictedLimit == "cpu" {
		fmt.Fprintf(w, "\nnote: the run used %.2f of %d cores; if the machine is busy with other work, the prediction (all %d cores free) will not be reached",
			rep.CoresUsed, rep.Cores, rep.Cores)
	}
	if rep.Topology.SMT() {
		fmt.Fprintf(w, "\nnote: %s; the prediction counts every logical CPU as a core, but the second thread of a core adds much less to CPU-bound work",
			rep.Topology)
	}
	fmt.Fprintf(w, "\nbottleneck: %s\n", rep.Bottleneck)
	fmt.Fprintf(w, "suggested workers for %d cores: %s (now %s); predicted %.0f samples/s, then limited by %s\n",
		rep.Cores, formatWorkers(rep.Stages, rep.SuggestedWorkers), formatWorkers(rep.Stages, rep.Workers),
		rep.PredictedPerS, rep.PredictedLimit)
	var sets []string
	for _, s := range rep.Stages {
		if s.Name == job.StageDecode || s.Name == job.StageAugment {
			sets = append(sets, fmt.Sprintf("--set workers.%s=%d", s.Name, rep.SuggestedWorkers[s.Name]))
		}
	}
	if len(sets) > 0 {
		fmt.Fprintf(w, "try: %s\n", strings.Join(sets, " "))
	}
}

// formatWorkers lists worker counts in flow order: "read 1, decode 6, augment 9, batch 1".
func formatWorkers(stages []monitor.StageProfile, workers map[string]int) string {
	var parts []string
	for _, s := range stages {
		if n, ok := workers[s.Name]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", s.Name, n))
		}
	}
	return strings.Join(parts, ", ")
}

// skipDetail is the report's Brief after a colon, or "" when nothing was skipped.
func skipDetail(s pipeline.SkipReport) string {
	if s.Empty() {
		return ""
	}
	return ": " + s.Brief()
}
