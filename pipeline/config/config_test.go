package config

import (
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml/ast"
)

const sample = `source:
  shards: testdata/x-{0..2}.tar
  shuffle_buffer: 64
epochs: 2
seed: 7
views: mocov2
batch:
  size: 16
sink:
  kind: null
workers:
  decode: 2
  augment: 3
memory_budget: 512MiB
`

func TestParseDefaultsAndValues(t *testing.T) {
	c, err := Parse("a.yaml", []byte(sample), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Epochs != 2 || c.Seed != 7 || c.MemoryBudget != 512<<20 || c.OnError != "skip" ||
		c.Workers.Decode != 2 || c.Workers.Augment != 3 || c.Decode.MaxPixels != DefaultMaxPixels {
		t.Fatalf("unexpected config %+v", c)
	}
	var views string
	if err := DecodeNode("a.yaml", c.Views, &views); err != nil || views != "mocov2" {
		t.Fatalf("views %q %v", views, err)
	}
}

func TestUnknownKeyNamesLine(t *testing.T) {
	_, err := Parse("a.yaml", []byte(sample+"worker:\n  decode: 3\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "a.yaml") || !strings.Contains(err.Error(), "worker") ||
		!strings.Contains(err.Error(), "[15:") {
		t.Fatalf("want an error naming file, key and line 15, got %v", err)
	}
}

func TestNestedUnknownKeyNamesLine(t *testing.T) {
	c, err := Parse("a.yaml", []byte(sample), nil)
	if err != nil {
		t.Fatal(err)
	}
	var src struct {
		Shards string `yaml:"shards"`
	}
	err = DecodeNode("a.yaml", c.Source, &src)
	if err == nil || !strings.Contains(err.Error(), "shuffle_buffer") || !strings.Contains(err.Error(), "[3:") {
		t.Fatalf("want an error naming shuffle_buffer at line 3, got %v", err)
	}
}

func TestBadValues(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"on_error=ignore", "on_error"},
		{"epochs=-1", "epochs"},
		{"memory_budget=lots", "not a size"},
		{"epochs=abc", "--set epochs=abc"},
	} {
		_, err := Parse("a.yaml", []byte(sample), []string{tc.set})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %s: want error containing %q, got %v", tc.set, tc.want, err)
		}
	}
}

func TestSetOverrides(t *testing.T) {
	c, err := Parse("a.yaml", []byte(sample), []string{
		"source.shards=/data/x-{0..3}.tar", // replace a nested value
		"seed=11",                          // replace a top-level value
		"workers.queue=9",                  // add a key to an existing block
		"decode.max_pixels=1000",           // add a whole block
		"sink.delay=5ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Seed != 11 || c.Workers.Queue != 9 || c.Decode.MaxPixels != 1000 {
		t.Fatalf("overrides not applied: %+v", c)
	}
	var src struct {
		Shards        string `yaml:"shards"`
		ShuffleBuffer int    `yaml:"shuffle_buffer"`
	}
	if err := DecodeNode("a.yaml", c.Source, &src); err != nil || src.Shards != "/data/x-{0..3}.tar" {
		t.Fatalf("source %+v %v", src, err)
	}
	// "kind: null" is YAML's null, so Kind stays empty: the null sink is the default.
	var snk struct {
		Kind  string `yaml:"kind"`
		Delay string `yaml:"delay"`
	}
	if err := DecodeNode("a.yaml", c.Sink, &snk); err != nil || snk.Delay != "5ms" || snk.Kind != "" {
		t.Fatalf("sink %+v %v", snk, err)
	}
	if _, err := Parse("a.yaml", []byte(sample), []string{"noequals"}); err == nil {
		t.Fatal("a --set without = must fail")
	}
	if _, err := Parse("a.yaml", []byte(sample), []string{"views.size=3"}); err == nil {
		t.Fatal("setting a key under a scalar must fail")
	}
}

func TestParseByteSize(t *testing.T) {
	for s, want := range map[string]int64{"123": 123, "4GiB": 4 << 30, "512MiB": 512 << 20, "2GB": 2e9, "1.5GiB": 3 << 29, "100k": 1e5} {
		got, err := ParseByteSize(s)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
}

var _ ast.Node // the blocks are kept as nodes

func TestDurationAcceptsGoSpansAndSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "2m": 2 * time.Minute, "0": 0, "1.5": 1500 * time.Millisecond, `"45s"`: 45 * time.Second} {
		var d Duration
		if err := d.UnmarshalYAML([]byte(in)); err != nil || time.Duration(d) != want {
			t.Errorf("%s: %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	var d Duration
	if err := d.UnmarshalYAML([]byte("soon")); err == nil || !strings.Contains(err.Error(), "not a duration") {
		t.Errorf("soon: %v", err)
	}
}

// A fraction given for an integer is an error naming the file, line and whole key, not a value
// the decoder truncates (batch.size: 16.5 would train with 16); 2.0 is a whole number.
func TestFractionsForIntegersAreErrors(t *testing.T) {
	doc := strings.Replace(sample, "epochs: 2\n", "epochs: 2.5\n", 1)
	if _, err := Parse("a.yaml", []byte(doc), nil); err == nil || !strings.Contains(err.Error(), "a.yaml:4: epochs: 2.5 is not a whole number") {
		t.Errorf("epochs: 2.5: %v", err)
	}
	if _, err := Parse("a.yaml", []byte(sample), []string{"workers.decode=1.5"}); err == nil || !strings.Contains(err.Error(), "workers.decode: 1.5 is not a whole number") {
		t.Errorf("--set workers.decode=1.5: %v", err)
	}
	c, err := Parse("a.yaml", []byte(strings.Replace(sample, "size: 16\n", "size: 16.5\n", 1)), []string{"epochs=3.0"})
	if err != nil || c.Epochs != 3 {
		t.Fatalf("epochs: 3.0: %v (epochs %d)", err, c.Epochs)
	}
	var batch struct {
		Size   int       `yaml:"size"`
		Shapes [][]int64 `yaml:"shapes"`
		Mean   []float64 `yaml:"mean"`
	}
	if err := DecodeNode("a.yaml", c.Batch, &batch); err == nil || !strings.Contains(err.Error(), "a.yaml:8: batch.size: 16.5 is not a whole number") {
		t.Errorf("batch.size: 16.5: %v", err)
	}
	block, err := Parse("a.yaml", []byte(sample), []string{"batch.shapes=[[1, 2], [3, 4.25]]", "batch.mean=[0.5, 0.25]"})
	if err != nil {
		t.Fatal(err)
	}
	if err := DecodeNode("a.yaml", block.Batch, &batch); err == nil || !strings.Contains(err.Error(), "batch.shapes[1][1]: 4.25 is not a whole number") {
		t.Errorf("a fraction in a list of integers: %v", err)
	}
}

// The hint about a --set kind change names a key the file wrote in that block, and stays out of
// an error about a key the overrides added themselves.
func TestKindHintOnlyForTheFilesKeys(t *testing.T) {
	file := strings.Replace(sample, "  kind: null\n", "  kind: a\n  width: 3\n", 1)
	sets := []string{"sink.kind=b", "sink.depth=2"}
	c, err := Parse("a.yaml", []byte(file), sets)
	if err != nil {
		t.Fatal(err)
	}
	// Only width is unknown here: with depth unknown too, which of the two the decoder names
	// first is not fixed.
	var kindOnly struct {
		Kind  string `yaml:"kind"`
		Depth int    `yaml:"depth"`
	}
	err = c.Explain(DecodeNode("a.yaml", c.Sink, &kindOnly))
	if err == nil || !strings.Contains(err.Error(), `unknown field "width"`) ||
		!strings.Contains(err.Error(), `"width" is the file's key`) || !strings.Contains(err.Error(), "--set 'sink={kind: b}'") {
		t.Fatalf("want the hint about width, got %v", err)
	}
	var withWidth struct {
		Kind  string `yaml:"kind"`
		Width int    `yaml:"width"`
	}
	err = c.Explain(DecodeNode("a.yaml", c.Sink, &withWidth))
	if err == nil || !strings.Contains(err.Error(), `unknown field "depth"`) || strings.Contains(err.Error(), "changes the kind only") {
		t.Fatalf("want depth refused without the hint (the override added it), got %v", err)
	}
}
