package config

import (
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary YAML and an arbitrary --set override to Parse: it must never
// panic, and a config it accepts must have its defaults applied and be within their limits.
// Seeds: testdata/fuzz/FuzzParse and the sample config with common overrides.
func FuzzParse(f *testing.F) {
	for _, set := range []string{"epochs=3", "source.shards=/x/{0..3}.tar", "views.size=96", "memory_budget=1GiB", "a.b.c=[1, {d: 2}]", "=", "sink"} {
		f.Add([]byte(sample), set)
	}
	f.Fuzz(func(t *testing.T, src []byte, set string) {
		var sets []string
		if set != "" {
			sets = strings.Split(set, "\n") // several overrides in one input
		}
		c, err := Parse("fuzz.yaml", src, sets)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") && !strings.Contains(err.Error(), "--set") {
				t.Fatalf("error names neither the file nor the override: %v", err)
			}
			return
		}
		if c.Epochs < 1 || c.MemoryBudget < 1 || c.Decode.MaxPixels < 1 || (c.OnError != "skip" && c.OnError != "fail") ||
			c.Workers.Decode < 0 || c.Workers.Augment < 0 || c.Workers.Queue < 0 {
			t.Fatalf("accepted a config outside its limits: %+v", c)
		}
	})
}

// An override with an empty value sets null, as `key:` in a file does; it used to crash the
// YAML library (found by FuzzParse, seed set_empty_value).
func TestSetEmptyValueIsNull(t *testing.T) {
	c, err := Parse("a.yaml", []byte(sample), []string{"epochs=", "workers.decode=  "})
	if err != nil {
		t.Fatal(err)
	}
	if c.Epochs != DefaultEpochs || c.Workers.Decode != 0 {
		t.Fatalf("epochs %d, workers.decode %d: want the defaults", c.Epochs, c.Workers.Decode)
	}
	if _, err := Parse("a.yaml", []byte(sample), []string{"epochs=1\n---\n2"}); err == nil || !strings.Contains(err.Error(), "--set") {
		t.Fatalf("two documents as one value: got %v", err)
	}
}

func TestByteSizeOverflowIsAnError(t *testing.T) {
	for _, s := range []string{"1e300TiB", "9223372036854775808", "8388608TiB"} {
		if n, err := ParseByteSize(s); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", s, n)
		}
	}
}

// NaN is not a number of bytes or seconds: converted to an integer it is whatever the CPU
// makes of it (the most negative int64 on amd64, 0 on arm64, which then reads as "use the
// default"), so it must be refused where it is parsed. So must a span of seconds that does
// not fit a time.Duration.
func TestNonFiniteSizesAndDurationsAreErrors(t *testing.T) {
	for _, s := range []string{"NaN", "nan", "NaNGiB", "+NaN"} {
		if n, err := ParseByteSize(s); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", s, n)
		}
	}
	for _, s := range []string{"NaN", "Inf", "-Inf", "1e300", "9.3e9"} {
		var d Duration
		if err := d.UnmarshalYAML([]byte(s)); err == nil {
			t.Errorf("Duration %q = %v, want an error", s, time.Duration(d))
		}
	}
}
