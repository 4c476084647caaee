// Package config loads a pipeline's YAML file: the top-level keys are checked here, and each
// component block (source, views, batch, sink) is kept as a YAML node that its component
// decodes strictly, so every error names the file, line and key at fault.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Config is one pipeline run: source -> decode -> views -> batch -> sink.
type Config struct {
	Source ast.Node `yaml:"source"` // decoded by stages/source
	Views  ast.Node `yaml:"views"`  // a recipe name or block, decoded by augment
	Batch  ast.Node `yaml:"batch"`  // decoded by stages/batch
	Sink   ast.Node `yaml:"sink"`   // decoded by the sink its kind names
	KNN    ast.Node `yaml:"knn"`    // the MoCo trainer's kNN monitor splits, decoded by job

	Decode  Decode  `yaml:"decode"`
	Workers Workers `yaml:"workers"`

	Epochs       int      `yaml:"epochs"`
	Seed         uint64   `yaml:"seed"`
	MemoryBudget ByteSize `yaml:"memory_budget"`
	OnError      string   `yaml:"on_error"` // skip (default) or fail

	file string
	sets []string // the --set overrides applied
	root ast.Node // the file's top-level mapping after the overrides, for Explain
}

// Decode configures the decode stage.
type Decode struct {
	MaxPixels int64 `yaml:"max_pixels"` // images with more pixels are skipped as too_large
}

// Workers sets the goroutines per stage and the queue between stages.
type Workers struct {
	Decode  int `yaml:"decode"`
	Augment int `yaml:"augment"`
	// Queue is the capacity of each stage's output queue, in items (default: one per worker of
	// the larger stage).
	Queue int `yaml:"queue"`
}

// Defaults filled in when a key is absent.
const (
	DefaultEpochs       = 1
	DefaultMemoryBudget = 2 << 30
	DefaultMaxPixels    = 64_000_000 // as stages/decode.DefaultMaxPixels
)

// File is the path the config was loaded from (for messages).
func (c *Config) File() string { return c.file }

// Load reads a config file and applies overrides of the form key.path=value (a YAML value).
func Load(path string, overrides []string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src, overrides)
}

// Parse is Load on bytes already read; name is used in messages.
func Parse(name string, src []byte, overrides []string) (*Config, error) {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", name, yaml.FormatError(err, false, true))
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return nil, fmt.Errorf("%s: want exactly one YAML document with a mapping of keys", name)
	}
	for _, o := range overrides {
		if err := applySet(f, o); err != nil {
			return nil, fmt.Errorf("--set %s: %w", o, err)
		}
	}
	c := &Config{file: name, sets: overrides, root: f.Docs[0].Body}
	if err := DecodeNode(name, f.Docs[0].Body, c); err != nil {
		return nil, c.Explain(err)
	}
	if err := c.defaults(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// Explain adds to an error about the config's values the --set overrides that changed it:
// their values sit at lines of their own, not the file's.
func (c *Config) Explain(err error) error {
	if err == nil || len(c.sets) == 0 {
		return err
	}
	err = fmt.Errorf("%w\n(the config was changed by --set %s)", err, strings.Join(c.sets, " --set "))
	if hint := c.kindHint(err); hint != "" {
		err = fmt.Errorf("%w\n%s", err, hint)
	}
	return err
}

// kindHint explains an unknown key left behind by `--set block.kind=new`: the override
// replaces only the kind, so the file's other keys of that block, written for the old kind,
// stay and the new kind refuses them. It says how to replace the whole block instead.
func (c *Config) kindHint(err error) string {
	var unknown *UnknownFieldError
	if !errors.As(err, &unknown) {
		return ""
	}
	for _, set := range c.sets {
		key, kind, _ := strings.Cut(set, "=")
		block, ok := strings.CutSuffix(key, ".kind")
		if !ok || strings.Contains(block, ".") || slices.Contains(c.setKeys(), block+"."+unknown.Key) {
			continue
		}
		if p, err := pathOf([]string{block, unknown.Key}); err != nil || !hasNode(p, c.root) {
			continue
		}
		return fmt.Sprintf("(%q is the file's key for its %s kind: --set %s changes the kind only and keeps the "+
			"block's other keys; to replace the whole block, write --set '%s={kind: %s}')",
			unknown.Key, block, set, block, kind)
	}
	return ""
}

// setKeys are the key paths the --set overrides name.
func (c *Config) setKeys() []string {
	keys := make([]string, len(c.sets))
	for i, s := range c.sets {
		keys[i], _, _ = strings.Cut(s, "=")
	}
	return keys
}

func hasNode(p *yaml.Path, root ast.Node) bool {
	if root == nil {
		return false
	}
	_, err := p.FilterNode(root)
	return err == nil
}

// UnknownFieldError is DecodeNode's error for a key the target type does not have.
type UnknownFieldError struct {
	Key string // the key at fault
	msg string // the message naming file, line and key
}

func (e *UnknownFieldError) Error() string { return e.msg }

var unknownField = regexp.MustCompile(`unknown field "([^"]*)"`)

func (c *Config) defaults() error {
	if c.Epochs == 0 {
		c.Epochs = DefaultEpochs
	}
	if c.Epochs < 0 {
		return fmt.Errorf("epochs: %d is negative", c.Epochs)
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = DefaultMemoryBudget
	}
	if c.MemoryBudget < 0 {
		return fmt.Errorf("memory_budget: %d is negative", c.MemoryBudget)
	}
	switch c.OnError {
	case "":
		c.OnError = "skip"
	case "skip", "fail":
	default:
		return fmt.Errorf("on_error: %q is neither skip nor fail", c.OnError)
	}
	if c.Decode.MaxPixels == 0 {
		c.Decode.MaxPixels = DefaultMaxPixels
	}
	if c.Decode.MaxPixels < 0 {
		return fmt.Errorf("decode.max_pixels: %d is negative", c.Decode.MaxPixels)
	}
	if c.Workers.Decode < 0 || c.Workers.Augment < 0 || c.Workers.Queue < 0 {
		return fmt.Errorf("workers: counts must not be negative")
	}
	return nil
}

// DecodeNode decodes a YAML node strictly into v: an unknown key or a value of the wrong type is
// an error that names the file, the line and the key.
func DecodeNode(file string, node ast.Node, v any) error {
	if node == nil {
		return nil
	}
	if err := yaml.NodeToValue(node, v, yaml.DisallowUnknownField()); err != nil {
		msg := fmt.Sprintf("%s: %s", file, strings.TrimSpace(yaml.FormatError(err, false, true)))
		if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
			return &UnknownFieldError{Key: m[1], msg: msg}
		}
		return errors.New(msg)
	}
	return CheckWholeNumbers(file, node, v)
}

// DecodeNodeLoose is DecodeNode that ignores unknown keys (to read a block's kind first).
func DecodeNodeLoose(file string, node ast.Node, v any) error {
	if node == nil {
		return nil
	}
	if err := yaml.NodeToValue(node, v); err != nil {
		return fmt.Errorf("%s: %s", file, strings.TrimSpace(yaml.FormatError(err, false, true)))
	}
	return CheckWholeNumbers(file, node, v)
}

// Errorf makes an error about the value at node, naming the file and line.
func Errorf(file string, node ast.Node, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if node != nil && node.GetToken() != nil {
		return fmt.Errorf("%s:%d: %s", file, node.GetToken().Position.Line, msg)
	}
	return fmt.Errorf("%s: %s", file, msg)
}

// applySet sets key.path=value in the parsed file, adding the keys that are missing.
func applySet(f *ast.File, set string) error {
	key, value, ok := strings.Cut(set, "=")
	if !ok || key == "" {
		return fmt.Errorf("want key.path=value")
	}
	// The value must be one YAML value: an empty one (--set epochs=) is null, as in a file.
	vf, err := parser.ParseBytes([]byte(value), 0)
	if err != nil {
		return fmt.Errorf("value: %s", strings.TrimSpace(yaml.FormatError(err, false, false)))
	}
	if len(vf.Docs) > 1 {
		return fmt.Errorf("value: want one YAML value, got %d documents", len(vf.Docs))
	}
	if len(vf.Docs) == 0 || vf.Docs[0].Body == nil {
		value = "null"
	}
	parts := strings.Split(key, ".")
	for _, p := range parts {
		if p == "" {
			return fmt.Errorf("empty key in %q", key)
		}
	}
	// Replace the value where the whole path exists.
	if p, err := pathOf(parts); err != nil {
		return err
	} else if _, err := p.FilterFile(f); err == nil {
		return p.ReplaceWithReader(f, strings.NewReader(value))
	}
	// Else merge a new mapping into the deepest mapping that exists.
	for depth := len(parts) - 1; depth >= 0; depth-- {
		var buf bytes.Buffer
		for i, p := range parts[depth:] {
			buf.WriteString(strings.Repeat("  ", i) + p + ":")
			if i == len(parts[depth:])-1 {
				buf.WriteString(" " + value)
			}
			buf.WriteString("\n")
		}
		if depth == 0 {
			p, _ := yaml.PathString("$")
			return p.MergeFromReader(f, &buf)
		}
		p, err := pathOf(parts[:depth])
		if err != nil {
			return err
		}
		n, err := p.FilterFile(f)
		if err != nil {
			continue
		}
		if _, isMap := n.(*ast.MappingNode); !isMap {
			if _, isMV := n.(*ast.MappingValueNode); !isMV {
				return fmt.Errorf("%s is not a mapping", strings.Join(parts[:depth], "."))
			}
		}
		return p.MergeFromReader(f, &buf)
	}
	return nil
}

func pathOf(parts []string) (*yaml.Path, error) {
	b := (&yaml.PathBuilder{}).Root()
	for _, p := range parts {
		b = b.Child(p)
	}
	return b.Build(), nil
}

// ByteSize is a size in bytes written as a number or with a unit: 512MiB, 4GiB, 2GB, 100k.
type ByteSize int64

// UnmarshalYAML accepts a plain integer or a number with a unit.
func (b *ByteSize) UnmarshalYAML(raw []byte) error {
	n, err := ParseByteSize(strings.Trim(strings.TrimSpace(string(raw)), `"'`))
	if err != nil {
		return err
	}
	*b = ByteSize(n)
	return nil
}

// ParseByteSize parses "4GiB", "512MB", "100k" or "123456".
func ParseByteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"k", 1e3}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
	}
	num, mult := s, int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsNaN(v) {
		return 0, fmt.Errorf("%q is not a size (use bytes or a unit: 512MiB, 4GiB)", s)
	}
	if v*float64(mult) >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large a size", s)
	}
	return int64(v * float64(mult)), nil
}

// String formats a byte count for people.
func (b ByteSize) String() string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", int64(b))
}

// Duration is a time span written as Go writes durations (30s, 2m, 1h30m) or as a plain number
// of seconds, so that 0 reads as zero rather than as an error.
type Duration time.Duration

// UnmarshalYAML accepts "30s", "2m", or a number of seconds.
func (d *Duration) UnmarshalYAML(raw []byte) error {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"'`)
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		ns := secs * float64(time.Second)
		if math.IsNaN(ns) || math.Abs(ns) >= math.MaxInt64 {
			return fmt.Errorf("%q is not a duration that fits (use 30s, 2m, or seconds)", s)
		}
		*d = Duration(ns)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use 30s, 2m, or seconds)", s)
	}
	*d = Duration(v)
	return nil
}

// String formats the duration as Go does.
func (d Duration) String() string { return time.Duration(d).String() }
