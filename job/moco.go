package job

import (
	"os"

	"pipeline/pipeline/config"
	"pipeline/sink"
	"pipeline/sink/moco"
	"pipeline/sink/moco/device"
	"pipeline/stages/source"
)

// KNN is the `knn:` block: the labelled data the MoCo trainer's kNN monitor classifies after
// every epoch (and once at the start), read without augmentation.
type KNN struct {
	Bank source.Config `yaml:"bank"` // the feature bank: training images
	Test source.Config `yaml:"test"` // the images to classify
	// Size is the side the images are resized to (PIL bilinear); default: the q view's size.
	Size int `yaml:"size"`
	// Limit caps the samples read from each split (0: all).
	Limit int `yaml:"limit"`
}

// openMoCo builds the trainer sink.
func openMoCo(j *Job) (sink.Sink, error) {
	cfg, opts, err := mocoConfig(j)
	if err != nil {
		return nil, err
	}
	return moco.New(cfg, opts)
}

// describeMoCo says which backend the trainer will run on (`auto` resolved).
func describeMoCo(j *Job) string {
	cfg, _, err := mocoConfig(j)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	c, err := device.Resolve(cfg.Backend, cfg.Plugin)
	if err != nil {
		return "(backend " + cfg.Backend + ": " + err.Error() + ")"
	}
	return "on " + c.String()
}

// mocoConfig reads the trainer's config: the sink block over MoCo v2's defaults, the cosine
// schedule over the run's epochs unless the block says otherwise, and the kNN splits.
func mocoConfig(j *Job) (moco.Config, moco.Options, error) {
	file := j.Config.File()
	cfg := moco.DefaultConfig()
	cfg.Epochs = j.Config.Epochs
	cfg.Seed = j.Config.Seed
	opts := moco.Options{Log: os.Stderr}
	if err := config.DecodeNode(file, j.Config.Sink, &cfg); err != nil {
		return cfg, opts, blockError(err)
	}
	if j.Config.KNN != nil {
		var k KNN
		if err := config.DecodeNode(file, j.Config.KNN, &k); err != nil {
			return cfg, opts, blockError(err)
		}
		if k.Size == 0 && len(j.Groups) > 0 {
			k.Size = j.Groups[0].Height
		}
		opts.KNN = &moco.KNNSplits{
			Bank: labelled(k.Bank, k.Size, k.Limit, j.Config.Decode.MaxPixels),
			Test: labelled(k.Test, k.Size, k.Limit, j.Config.Decode.MaxPixels),
		}
	}
	return cfg, opts, nil
}
