package source

import (
	"errors"
	"fmt"
	"time"

	"pipeline/pipeline/config"
	"pipeline/stages/objstore"
	"pipeline/stages/parquet"
	"pipeline/stages/shardlist"
)

// Config is the source: block of a run's config file. Exactly one of Shards, Folder and
// Synthetic names the data. For example:
//
//	source:
//	  shards: /data/train-{000000..001023}.tar   # or a list of patterns
//	  shuffle_buffer: 2000
//	  readers: 2
//	  labels: required
//
//	source:
//	  synthetic: {count: 10000, width: 500, height: 375}
type Config struct {
	// Shards are WebDataset tar shard patterns (plain or .gz): globs and brace ranges, see
	// package shardlist. A YAML string or list of strings.
	Shards    Patterns         `yaml:"shards"`
	Folder    string           `yaml:"folder"`    // an ImageNet-style root/<class>/<image> folder
	Synthetic *SyntheticConfig `yaml:"synthetic"` // generated JPEGs, no I/O
	Parquet   *parquet.Config  `yaml:"parquet"`   // Hugging Face-style Parquet files; row groups are the parts

	// ShuffleBuffer is the number of samples held to shuffle the stream (0: no buffer). The
	// buffered samples' encoded bytes count against the encoded share of memory_budget.
	ShuffleBuffer int `yaml:"shuffle_buffer"`
	// ShuffleShards shuffles the order of the rank's shards (folder: files) each epoch;
	// default true.
	ShuffleShards *bool `yaml:"shuffle_shards"`
	// Readers is the number of shards read at once (default 1); their samples are interleaved
	// round-robin, so the stream does not depend on timing.
	Readers int `yaml:"readers"`
	// Rank and WorldSize split the shards between processes; unset, they come from the env
	// variables RANK and WORLD_SIZE (as torchrun sets them), else 0 and 1.
	Rank      *int `yaml:"rank"`
	WorldSize *int `yaml:"world_size"`
	// Labels is "required" (default: a sample without one is skipped as no_label) or
	// "optional" (it gets label -1).
	Labels string `yaml:"labels"`
	// MaxMemberBytes refuses larger image members or files before reading them (too_large);
	// default 64 MiB.
	MaxMemberBytes config.ByteSize `yaml:"max_member_bytes"` // bytes, or with a unit: 64MiB
	// ReadTimeout bounds every read of a tar shard ("30s"; default DefaultReadTimeout; 0: no
	// bound). A read that times out is sent again ReadRetries times (default
	// DefaultReadRetries); then the shard is dropped as stalled_shard (under on_error: skip the
	// run goes on with the next shard). On a network filesystem a read can hang for ever: the
	// default bound is far above any healthy read of at most 1 MiB, so it only ends hangs.
	ReadTimeout *config.Duration `yaml:"read_timeout"`
	ReadRetries *int             `yaml:"read_retries"`
	// Remote says how s3://, http(s):// and pipe: shards are read (package objstore).
	Remote objstore.Config `yaml:"remote"`
}

// The defaults of read_timeout and read_retries: a read stuck for 2 minutes, twice, stalls its
// shard.
const (
	DefaultReadTimeout = 2 * time.Minute
	DefaultReadRetries = 1
)

// SyntheticConfig sizes the synthetic source: Count samples an epoch (split over the ranks)
// cycling over a few Width x Height JPEGs.
type SyntheticConfig struct {
	Count  int `yaml:"count"`
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
}

// Patterns is a list of shard patterns that YAML may also give as one string.
type Patterns []string

// UnmarshalYAML accepts a string or a list of strings.
func (p *Patterns) UnmarshalYAML(unmarshal func(any) error) error {
	var one string
	if err := unmarshal(&one); err == nil {
		*p = Patterns{one}
		return nil
	}
	var list []string
	if err := unmarshal(&list); err != nil {
		return errors.New("shards: want a pattern or a list of patterns")
	}
	*p = list
	return nil
}

// Label modes.
const (
	LabelsRequired = "required"
	LabelsOptional = "optional"
)

// Defaults for the synthetic source's image size (about a mean ImageNet image).
const (
	DefaultSyntheticWidth  = 500
	DefaultSyntheticHeight = 375
)

// withDefaults checks cfg and fills in its defaults, rank and world size included.
func (cfg Config) withDefaults() (Config, error) {
	kinds := 0
	for _, set := range []bool{len(cfg.Shards) > 0, cfg.Folder != "", cfg.Synthetic != nil, cfg.Parquet != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return cfg, errors.New("source: set exactly one of shards, folder, synthetic and parquet")
	}
	if cfg.ShuffleShards == nil {
		yes := true
		cfg.ShuffleShards = &yes
	}
	if cfg.ReadTimeout == nil {
		cfg.ReadTimeout = ptrTo(config.Duration(DefaultReadTimeout))
	}
	if cfg.ReadRetries == nil {
		cfg.ReadRetries = ptrTo(DefaultReadRetries)
	}
	if cfg.ShuffleBuffer < 0 || cfg.Readers < 0 || cfg.MaxMemberBytes < 0 || *cfg.ReadTimeout < 0 || *cfg.ReadRetries < 0 {
		return cfg, errors.New("source: shuffle_buffer, readers, max_member_bytes, read_timeout and read_retries cannot be negative")
	}
	if cfg.Readers == 0 {
		cfg.Readers = 1
	}
	switch cfg.Labels {
	case "":
		cfg.Labels = LabelsRequired
	case LabelsRequired, LabelsOptional:
	default:
		return cfg, fmt.Errorf("source: labels %q: want %q or %q", cfg.Labels, LabelsRequired, LabelsOptional)
	}
	if cfg.Synthetic != nil {
		syn := *cfg.Synthetic
		if syn.Count < 1 {
			return cfg, errors.New("source: synthetic.count must be at least 1")
		}
		if syn.Width == 0 {
			syn.Width = DefaultSyntheticWidth
		}
		if syn.Height == 0 {
			syn.Height = DefaultSyntheticHeight
		}
		cfg.Synthetic = &syn
	}
	if cfg.Rank == nil || cfg.WorldSize == nil {
		rank, world, err := shardlist.RankFromEnv()
		if err != nil {
			return cfg, fmt.Errorf("source: %w", err)
		}
		if cfg.Rank == nil {
			cfg.Rank = &rank
		}
		if cfg.WorldSize == nil {
			cfg.WorldSize = &world
		}
	}
	if *cfg.WorldSize < 1 || *cfg.Rank < 0 || *cfg.Rank >= *cfg.WorldSize {
		return cfg, fmt.Errorf("source: rank %d of world_size %d is not a valid rank", *cfg.Rank, *cfg.WorldSize)
	}
	return cfg, nil
}

func ptrTo[T any](v T) *T { return &v }
