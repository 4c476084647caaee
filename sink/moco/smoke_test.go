package moco

import (
	"testing"
	"time"
)

func TestSmokeSpeed(t *testing.T) {
	cfg := tinyConfig()
	cfg.Queue = 256
	tr := newTestTrainer(t, cfg)
	for i := range 5 {
		t0 := time.Now()
		res, err := tr.TrainStep(randomViews(uint64(i), 32, 28, 28), randomViews(uint64(i+100), 32, 28, 28), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("step %d loss %.4f acc %.3f lr %g in %v", i, res.Loss, res.Accuracy, res.LR, time.Since(t0))
	}
}
