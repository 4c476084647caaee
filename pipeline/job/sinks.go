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
)

// sinkKinds maps sink.kind to a constructor that decodes the sink block strictly.
var sinkKinds = map[string]func(j *Job) (sink.Sink, error){
	"null": func(j *Job) (sink.Sink, error) {
		c, err := decodeSink[null.Config](j)
		if err != nil {
			return nil, err
		}
		return null.New(c), nil
	},
	"arrow-file": func(j *Job) (sink.Sink, error) {
		c, err := decodeSink[arrowfile.Config](j)
		if err != nil {
			return nil, err
		}
		return arrowfile.New(c)
	},
	"arrow-socket": func(j *Job) (sink.Sink, error) {
		c, err := decodeSink[arrowsocket.Config](j)
		if err != nil {
			return nil, err
		}
		return arrowsocket.New(c)
	},
	"moco": openMoCo,
	"flight": func(j *Job) (sink.Sink, error) {
		c, err := decodeSink[flight.Config](j)
		if err != nil {
			return nil, err
		}
		return flight.New(c)
	},
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

// openSink builds the configured sink. An error in its block already names the file and line;
// the sink's own errors get the file.
func openSink(j *Job, kind string) (sink.Sink, error) {
	s, err := sinkKinds[kind](j)
	var bad badBlock
	switch {
	case errors.As(err, &bad):
		return nil, bad.error
	case err != nil: // the sink's own errors name the sink
		return nil, fmt.Errorf("%s: %w", j.Config.File(), err)
	}
	return s, nil
}
