package job

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"pipeline/pipeline/config"
	"pipeline/sink"
	"pipeline/sink/arrowfile"
	"pipeline/sink/arrowsocket"
	"pipeline/sink/flight"
	"pipeline/sink/null"
	"pipeline/stages/source"
)

// sinkFactory is one sink.kind: check decodes its block strictly, so that Build reports a typo
// in it before anything runs (and before `pipeline profile` replaces the sink); open builds it.
type sinkFactory struct {
	check func(j *Job) error
	open  func(j *Job) (sink.Sink, error)
	// describe, if set, adds to the plan line what the block decides at run time.
	describe func(j *Job) string
}

// plainSink is the factory of a sink built from its block alone.
func plainSink[T any](open func(T) (sink.Sink, error)) sinkFactory {
	return sinkFactory{
		check: func(j *Job) error { _, err := decodeSink[T](j); return err },
		open: func(j *Job) (sink.Sink, error) {
			c, err := decodeSink[T](j)
			if err != nil {
				return nil, err
			}
			return open(c)
		},
	}
}

// sinkKinds maps sink.kind to its factory.
var sinkKinds = map[string]sinkFactory{
	"null":         plainSink(func(c null.Config) (sink.Sink, error) { return null.New(c), nil }),
	"arrow-file":   plainSink(func(c arrowfile.Config) (sink.Sink, error) { return arrowfile.New(c) }),
	"arrow-socket": plainSink(func(c arrowsocket.Config) (sink.Sink, error) { return arrowsocket.New(c) }),
	"flight":       plainSink(func(c flight.Config) (sink.Sink, error) { return flight.New(c) }),
	"moco": {
		check:    func(j *Job) error { _, _, err := mocoConfig(j); return err },
		open:     openMoCo,
		describe: describeMoCo,
	},
}

// sinkPlan is the sink as the plan line shows it.
func (j *Job) sinkPlan() string {
	if d := sinkKinds[j.sinkKind].describe; d != nil {
		return j.sinkKind + " " + d(j)
	}
	return j.sinkKind
}

// decodeSink decodes the sink block strictly into the kind's config.
func decodeSink[T any](j *Job) (T, error) {
	var block struct {
		Kind   string `yaml:"kind"`
		Config T      `yaml:",inline"`
	}
	err := config.DecodeNode(j.Config.File(), j.Config.Sink, &block)
	return block.Config, blockError(err)
}

// badBlock is an error in the config's sink (or knn) block, which already names the file and
// line.
type badBlock struct{ error }

func (b badBlock) Unwrap() error { return b.error }

func blockError(err error) error {
	if err == nil {
		return nil
	}
	return badBlock{err}
}

// sinkKind reads sink.kind; an absent kind (or YAML's `null`) is the null sink.
func sinkKind(cfg *config.Config) (string, error) {
	var head struct {
		Kind string `yaml:"kind"`
	}
	if cfg.Sink != nil {
		if err := config.DecodeNodeLoose(cfg.File(), cfg.Sink, &head); err != nil {
			return "", err
		}
	}
	if head.Kind == "" {
		head.Kind = "null"
	}
	if _, ok := sinkKinds[head.Kind]; !ok {
		var names []string
		for k := range sinkKinds {
			names = append(names, k)
		}
		sort.Strings(names)
		return "", config.Errorf(cfg.File(), cfg.Sink, "sink.kind: unknown kind %q (known: %s)", head.Kind, strings.Join(names, ", "))
	}
	return head.Kind, nil
}

// checkSink decodes the sink block strictly for its kind, without opening the sink.
func checkSink(j *Job, kind string) error {
	err := sinkKinds[kind].check(j)
	if bad := (badBlock{}); errors.As(err, &bad) {
		return bad.error
	}
	return err
}

// openSink builds the configured sink. An error in its block already names the file and line;
// the sink's own errors get the file.
func openSink(j *Job, kind string) (sink.Sink, error) {
	s, err := sinkKinds[kind].open(j)
	var bad badBlock
	switch {
	case errors.As(err, &bad):
		return nil, bad.error
	case err != nil: // the sink's own errors name the sink
		return nil, fmt.Errorf("%s: %w", j.Config.File(), err)
	}
	return s, nil
}

// resumePosition reads the position a stateful sink restored from its checkpoint, if any, and
// the batches of the stream before it.
func resumePosition(snk sink.Sink) (*source.Position, int64, error) {
	st, ok := snk.(sink.Stateful)
	if !ok {
		return nil, 0, nil
	}
	return source.ParseState(st.PipelineState())
}
