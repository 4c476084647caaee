package batch

import (
	"fmt"
	"slices"

	"pipeline/schema"
)

// Config is the batch: block of a pipeline config.
type Config struct {
	Size int `yaml:"size"` // samples per batch (default 256)
	// DropLast drops the final partial batch; its samples are reported with the reason
	// partial_batch. Otherwise the final batch is emitted with fewer rows.
	DropLast bool `yaml:"drop_last"`
	// Normalize writes float32 tensors (v/255 - mean) / std per channel instead of uint8.
	Normalize bool      `yaml:"normalize"`
	Mean      []float32 `yaml:"mean"` // RGB, default ImageNet's
	Std       []float32 `yaml:"std"`  // RGB, default ImageNet's
	// KeepParams adds the params column; the augment stage must keep the params too.
	KeepParams bool `yaml:"keep_params"`
	// Recipe is written to the schema metadata; the caller copies it from the views block.
	Recipe string `yaml:"-"`
}

// DefaultSize is the batch size when the config has none: MoCo v2's.
const DefaultSize = 256

// ImageNet channel statistics, the torchvision defaults MoCo v2 uses.
var (
	ImageNetMean = []float32{0.485, 0.456, 0.406}
	ImageNetStd  = []float32{0.229, 0.224, 0.225}
)

// withDefaults fills in absent keys and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Size < 0 {
		return c, fmt.Errorf("batch.size: %d is negative", c.Size)
	}
	if c.Mean == nil {
		c.Mean = slices.Clone(ImageNetMean)
	}
	if c.Std == nil {
		c.Std = slices.Clone(ImageNetStd)
	}
	if len(c.Mean) != 3 || len(c.Std) != 3 {
		return c, fmt.Errorf("batch.mean and batch.std need 3 values (RGB), got %d and %d", len(c.Mean), len(c.Std))
	}
	for _, s := range c.Std {
		if s <= 0 {
			return c, fmt.Errorf("batch.std: %v has a value <= 0", c.Std)
		}
	}
	return c, nil
}

// GroupShape is the shape of one view group's column: Views views of Height x Width RGB.
type GroupShape struct {
	Name          string
	Views         int
	Height, Width int
}

// tensorShape is [H,W,3] for one view and [V,H,W,3] for more.
func (g GroupShape) tensorShape() []int {
	if g.Views == 1 {
		return []int{g.Height, g.Width, 3}
	}
	return []int{g.Views, g.Height, g.Width, 3}
}

func (g GroupShape) viewPixels() int { return g.Height * g.Width * 3 }

// What the budget sets aside per row of a batch beyond its tensors: the label, index, epoch,
// key offset and key string; with keep_params, the parameters' JSON per view.
const (
	rowSlack    = 128
	paramsSlack = 512
)

// Charge is what the memory budget sets aside for one batch of cfg: its tensors and the slack
// per row. begin reserves the tensors and offsets up front, finish the record's exact bytes.
func Charge(cfg Config, groups []GroupShape) int64 {
	row := rowTensorBytes(cfg, groups) + rowSlack
	if cfg.KeepParams {
		for _, g := range groups {
			row += int64(g.Views) * paramsSlack
		}
	}
	size := cfg.Size
	if size == 0 {
		size = DefaultSize
	}
	return row * int64(size)
}

// rowTensorBytes is the size of one row's tensors over every group: uint8, or float32 when
// normalized.
func rowTensorBytes(cfg Config, groups []GroupShape) int64 {
	elem := int64(1)
	if cfg.Normalize {
		elem = 4
	}
	var n int64
	for _, g := range groups {
		n += int64(g.Views*g.viewPixels()) * elem
	}
	return n
}

func checkGroups(groups []GroupShape) error {
	if len(groups) == 0 {
		return fmt.Errorf("batch: no view groups")
	}
	seen := map[string]bool{}
	for _, g := range groups {
		switch g.Name {
		case "", schema.ColLabel, schema.ColKey, schema.ColIndex, schema.ColEpoch, schema.ColParams:
			return fmt.Errorf("batch: view group name %q is empty or a fixed column's", g.Name)
		}
		if seen[g.Name] {
			return fmt.Errorf("batch: two view groups named %q", g.Name)
		}
		seen[g.Name] = true
		if g.Views <= 0 || g.Height <= 0 || g.Width <= 0 {
			return fmt.Errorf("batch: view group %q: %d views of %dx%d", g.Name, g.Views, g.Width, g.Height)
		}
	}
	return nil
}
