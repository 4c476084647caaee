// Command pipeline streams image datasets through decode and augmentation into Arrow batches
// for self-supervised training.
//
//	pipeline run FILE.yaml [--set key=value ...]   run a pipeline into its sink (train, write)
//	pipeline profile FILE.yaml                     find the slow stage and size the workers
//	pipeline bench --shards PATTERN                decode+augment throughput, no sink
//	pipeline augment ...                           look at, sample and replay views
//	pipeline shard ...                             write WebDataset tar shards
//	pipeline eval linear ...                       linear evaluation of a trained checkpoint
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"pipeline/internal/cli"
)

const usage = `usage: pipeline <command> [arguments]

commands:
  run FILE.yaml      run the pipeline the file describes (see README.md for the keys)
  profile FILE.yaml  run it into the null sink and report the slow stage and a worker split
  bench              decode and augment throughput with no sink
  augment            write, sample or replay augmented views of one image
  shard              convert an image folder or IDX files into tar shards
  eval linear        linear evaluation of a MoCo checkpoint
  version            print the version and the JPEG decoder in use

Run 'pipeline <command> -h' for a command's flags.
`

var commands = map[string]func(args []string, stdout, stderr io.Writer) error{
	"run":     cmdRun,
	"profile": cmdProfile,
	"bench":   cmdBench,
	"augment": cmdAugment,
	"shard":   cmdShard,
	"eval":    cmdEval,
	"version": cmdVersion,
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "pipeline: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err := cmd(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "pipeline %s: %v\n", args[0], err)
		if cli.IsUsage(err) {
			return 2
		}
		return 1
	}
	return 0
}

// usagef is a mistake in the command line (exit status 2).
func usagef(format string, args ...any) error { return cli.Usagef(format, args...) }

// parseArgs parses flags that may come before or after the positional arguments, as in
// `pipeline run train.yaml --set seed=3`.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, cli.Usage(err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
