package moco

import "math"

// LearningRate is the rate of a whole epoch (0-based) out of cfg.Epochs: the linearly scaled
// base rate (cfg.LR * batch / 256), with main_moco.py's per-epoch cosine decay when cfg.Cosine.
func LearningRate(cfg Config, batch, epoch int) float64 {
	lr := cfg.LR * float64(batch) / 256
	if cfg.Cosine {
		lr *= 0.5 * (1 + math.Cos(math.Pi*float64(epoch)/float64(cfg.Epochs)))
	}
	return lr
}
