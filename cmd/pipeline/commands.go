package main

import (
	"fmt"
	"io"
	"runtime"

	"pipeline/augment/augmentcli"
	"pipeline/sink/moco/mococli"
	"pipeline/stages/decode"
	"pipeline/stages/shardwrite"
)

func cmdAugment(args []string, stdout, stderr io.Writer) error {
	return augmentcli.Main(args, stdout, stderr)
}

func cmdEval(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "linear" {
		return usagef("usage: pipeline eval linear [flags] (linear evaluation of a MoCo checkpoint)")
	}
	return mococli.EvalLinearMain(args[1:], stdout, stderr)
}

func cmdShard(args []string, stdout, stderr io.Writer) error {
	return shardwrite.Main(args, stdout, stderr)
}

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return usagef("version takes no arguments, got %q", args)
	}
	fmt.Fprintf(stdout, "pipeline (%s, %s/%s), JPEG decoder: %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, decode.Backend())
	return nil
}
