package batch

import (
	"slices"
	"testing"

	"github.com/goccy/go-yaml"

	"pipeline/pipeline"
)

func TestConfigDecodesTheBatchBlock(t *testing.T) {
	src := "size: 128\ndrop_last: true\nnormalize: true\nmean: [0.5, 0.5, 0.5]\nkeep_params: true\n"
	var c Config
	if err := yaml.UnmarshalWithOptions([]byte(src), &c, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	c, err := c.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 128 || !c.DropLast || !c.Normalize || !c.KeepParams ||
		!slices.Equal(c.Mean, []float32{0.5, 0.5, 0.5}) || !slices.Equal(c.Std, ImageNetStd) {
		t.Fatalf("decoded %+v", c)
	}
}

func TestConfigRejectsBadValues(t *testing.T) {
	for _, c := range []Config{{Size: -1}, {Mean: []float32{1, 2}}, {Std: []float32{1, 0, 1}}} {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	acct := pipeline.NewBudget(pipeline.BudgetSplit{Batches: 1 << 20}).Batches
	if b, err := New(Config{}, []GroupShape{{Name: "q", Views: 1, Height: 1, Width: 1}}, acct, nil); err != nil {
		t.Fatalf("a valid batcher was refused: %v", err)
	} else {
		b.Close()
	}
	if _, err := New(Config{}, []GroupShape{{Name: "label", Views: 1, Height: 1, Width: 1}}, acct, nil); err == nil {
		t.Error("a group named like a fixed column was accepted")
	}
	if _, err := New(Config{}, []GroupShape{{Name: "q", Views: 1, Height: 1, Width: 1}, {Name: "q", Views: 1, Height: 1, Width: 1}}, acct, nil); err == nil {
		t.Error("two groups with one name were accepted")
	}
}
