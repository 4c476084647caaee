package moco

import (
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func TestConfigYAMLOverDefaults(t *testing.T) {
	cfg := DefaultConfig()
	src := "kind: moco\nencoder: resnet18\nstem: cifar\nmlp: false\nbn_splits: 4\nbackend: go\ndtype: bfloat16\n"
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Encoder != "resnet18" || cfg.Stem != "cifar" || cfg.MLP || cfg.BNSplits != 4 || cfg.DType != "bfloat16" {
		t.Errorf("decoded %+v", cfg)
	}
	if cfg.Queue != 65536 || cfg.Momentum != 0.999 || cfg.Temperature != 0.2 || cfg.LR != 0.03 || cfg.WeightDecay != 1e-4 {
		t.Errorf("defaults lost: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"encoder: vgg", "stem: tiny", "backend: cuda", "dtype: float16", "queue: 0", "kind: dino"} {
		c := DefaultConfig()
		if err := yaml.Unmarshal([]byte(bad), &c); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil {
			t.Errorf("%q validated", bad)
		} else if !strings.Contains(err.Error(), strings.Split(bad, ":")[1][1:]) && !strings.Contains(err.Error(), "queue") {
			t.Errorf("%q: error %q does not name the value", bad, err)
		}
	}
	if err := DefaultConfig().checkBatch(100); err == nil {
		t.Error("batch 100 accepted with K=65536")
	}
}
