package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"sync"

	"pipeline/job"
	"pipeline/monitor"
	"pipeline/pipeline/config"
	"pipeline/sink/null"
	"pipeline/stages/source"
)

// benchResult is `pipeline bench --json`.
type benchResult struct {
	TwinViewsPerS float64 `json:"twin_views_per_s"` // samples/s: each sample is one image made into its views
	Images        int64   `json:"images"`
	Seconds       float64 `json:"seconds"`
	Workers       int     `json:"workers"`
	// The machine's CPUs: on an SMT machine, workers beyond PhysicalCores share cores.
	LogicalCPUs   int    `json:"logical_cpus"`
	PhysicalCores int    `json:"physical_cores"` // 0: unknown
	Recipe        string `json:"recipe"`
	Decoder       string `json:"decoder"`
	Skipped       int64  `json:"skipped"`
}

func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	shards := fs.String("shards", "", "shard pattern, e.g. 'data/train-{000000..000003}.tar' (required)")
	recipe := fs.String("recipe", "mocov2", "augmentation recipe")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), fmt.Sprintf("cores to use (GOMAXPROCS, by default the CPUs this process may use, container limits included); decode and augment each get %d goroutines per core, as pipeline run's default", job.DefaultWorkersPerCore))
	images := fs.Int64("images", 2000, "images to process (the shards are re-read as often as needed)")
	warmup := fs.Int64("warmup", 100, "images processed before timing starts")
	asJSON := fs.Bool("json", false, "print one JSON line")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pipeline bench --shards PATTERN [--recipe mocov2] [--workers N] [--images M] [--json]")
		fs.PrintDefaults()
	}
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *shards == "" {
		return usagef("--shards is required")
	}
	if *workers < 1 || *images < 1 {
		return usagef("--workers and --images must be positive")
	}
	runtime.GOMAXPROCS(*workers)
	build := func(epochs int) (*job.Job, error) {
		yaml := fmt.Sprintf("source:\n  shards: %q\n  shuffle_buffer: 0\nepochs: %d\nviews: %s\nbatch:\n  size: 32\nworkers:\n  decode: %d\n  augment: %d\nmemory_budget: 2GiB\n",
			*shards, epochs, *recipe, *workers*job.DefaultWorkersPerCore, *workers*job.DefaultWorkersPerCore)
		cfg, err := config.Parse("--shards "+*shards, []byte(yaml), nil) // the name errors give
		if err != nil {
			return nil, err
		}
		return job.Build(cfg)
	}
	// One pass at most, until the first batch of images that decode: shards with none would
	// otherwise be re-read for ever (the timed run re-reads them as often as needed). Not just
	// the first image read: that one may be corrupt and the rest fine.
	probe, err := build(1)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	var stopOnce sync.Once
	first, err := probe.Run(context.Background(), job.Options{Sink: null.New(null.Config{}), Stop: stop,
		OnDelivered: func(int64, source.Position) error { stopOnce.Do(func() { close(stop) }); return nil }})
	if err != nil {
		return err
	}
	if first.Emitted == 0 { // with skips, Run has failed, naming them
		return fmt.Errorf("--shards %s: no image could be read and decoded (the shards hold no sample)", *shards)
	}
	j, err := build(1000000)
	if err != nil {
		return err
	}
	run := func(n int64) (*job.Summary, error) {
		return j.Run(context.Background(), job.Options{Sink: null.New(null.Config{}), MaxSamples: n})
	}
	if *warmup > 0 {
		if _, err := run(*warmup); err != nil {
			return err
		}
	}
	sum, err := run(*images)
	if err != nil {
		return err
	}
	res := benchResult{TwinViewsPerS: sum.SamplesPerS, Images: sum.Emitted, Seconds: sum.Seconds,
		Workers: *workers, Recipe: *recipe, Decoder: sum.Decoder, Skipped: sum.Skipped.Total}
	topo := monitor.MachineTopology()
	res.LogicalCPUs, res.PhysicalCores = topo.LogicalCPUs, topo.PhysicalCores
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "%s on %d cores: %.0f samples/s (%d images in %.2fs, decoder %s, %d skipped; machine: %s)\n",
		res.Recipe, res.Workers, res.TwinViewsPerS, res.Images, res.Seconds, res.Decoder, res.Skipped, topo)
	return nil
}
