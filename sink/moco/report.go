package moco

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"pipeline/plots"
)

// reportStats are the training report's series and what the progress line adds to the step's
// own figures: the data-wait share since the last line, the steps an epoch takes and the time
// a kNN evaluation takes, for the time left. Guarded by Sink.mu.
type reportStats struct {
	path                  string // the report's PNG; "": none
	log                   plots.StepLog
	windowWait, windowAll time.Duration // since the last progress line, timed steps only
	epochStart            int64         // steps done when the current epoch began
	skipEpoch             bool          // the current epoch began before a resume: not a whole one
	stepsPerEpoch         int64         // 0 until an epoch has been seen whole
	epoch                 int           // of the last step trained (or resumed from)
	knnTime               time.Duration // over knnRuns evaluations after an epoch
	knnRuns               int
}

func (r *reportStats) resumed(steps int64, epoch int) {
	r.epochStart, r.skipEpoch, r.epoch = steps, true, epoch
}

func (r *reportStats) step(steps int64, epoch int, res StepResult, wait, step time.Duration, timed bool) {
	p := plots.StepPoint{Step: steps, Epoch: epoch, N: 1, Loss: float64(res.Loss), Accuracy: float64(res.Accuracy), LR: res.LR}
	if timed {
		p.TimedN, p.StepMs, p.WaitMs = 1, ms(step), ms(wait)
		r.windowWait += wait
		r.windowAll += wait + step
	}
	r.log.Add(p)
	r.epoch = epoch
}

func (r *reportStats) knnTimed(d time.Duration) { r.knnTime += d; r.knnRuns++ }

// openReport settles where the training report goes and makes its folder, so that a run that
// could not write it stops before it trains.
func (s *Sink) openReport() error {
	path := s.cfg.Plot
	if path == "" && s.cfg.CheckpointDir != "" {
		path = filepath.Join(s.cfg.CheckpointDir, "training.png")
	}
	if path == "" {
		return nil
	}
	if !strings.HasSuffix(path, ".png") {
		return fmt.Errorf("plot %s: the training report is a .png", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	s.stats.report.path = path
	s.stats.report.log.Cap = plots.DefaultStepLogCap
	return nil
}

// epochEnded is called by the training goroutine when a batch of the next epoch arrives.
func (s *Sink) epochEnded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.stats.report
	if !r.skipEpoch && r.stepsPerEpoch == 0 {
		r.stepsPerEpoch = s.stats.steps - r.epochStart
	}
	r.epochStart, r.skipEpoch = s.stats.steps, false
}

// Training is the training report's data: the steps so far and the kNN accuracy per epoch. It
// may be called at any time.
func (s *Sink) Training() plots.Training {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.stats
	t := plots.Training{Steps: st.report.log.Points(), FirstStepS: float64(st.firstStepNs) / 1e9,
		Title: fmt.Sprintf("MoCo v2 training: %s encoder, batch %d, %d steps", s.cfg.Encoder, s.batchRows, st.steps)}
	first := 1 // a resumed run's kNN at init is not measured: its epochs count on from the checkpoint
	if st.knnInit != nil {
		t.KNN = append(t.KNN, plots.KNNPoint{Epoch: 0, Accuracy: *st.knnInit})
	} else {
		first = st.report.epoch + 2 - len(st.knn)
	}
	for i, acc := range st.knn {
		t.KNN = append(t.KNN, plots.KNNPoint{Epoch: first + i, Accuracy: acc})
	}
	return t
}

// redrawReport is writeReport during the run: a picture that cannot be drawn is worth a log
// line, not the run.
func (s *Sink) redrawReport() {
	if err := s.writeReport(); err != nil {
		s.logf("training report not written: %v", err)
	}
}

// writeReport redraws the training report and its CSV, if there is one to write.
func (s *Sink) writeReport() error {
	s.mu.Lock()
	path := s.stats.report.path
	s.mu.Unlock()
	if path == "" {
		return nil
	}
	t := s.Training()
	if len(t.Steps) == 0 {
		return nil // a resumed run that trained no step: the earlier report stands
	}
	if err := plots.DrawTraining(path, t); err != nil {
		return err
	}
	return plots.WriteCSV(path, t)
}

// progressLine is the step log: where the run is, how training goes and how long is left.
// Called with s.mu held, after the step's record.
func (s *Sink) progressLine() string {
	st := &s.stats
	r := &st.report
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d/%d step %d", s.trainer.Epoch()+1, s.cfg.Epochs, st.steps)
	total := int64(s.cfg.Epochs) * r.stepsPerEpoch
	if total > 0 {
		fmt.Fprintf(&b, "/%d", total)
	}
	fmt.Fprintf(&b, " loss %.4f acc %.3f lr %.5f", st.lastLoss, st.lastAccuracy, st.lastLR)
	if n := len(st.knn); n > 0 {
		fmt.Fprintf(&b, " knn %.3f", st.knn[n-1])
	} else if st.knnInit != nil {
		fmt.Fprintf(&b, " knn %.3f (init)", *st.knnInit)
	}
	if r.windowAll > 0 {
		fmt.Fprintf(&b, " data-wait %.0f%%", 100*float64(r.windowWait)/float64(r.windowAll))
	}
	r.windowWait, r.windowAll = 0, 0
	if st.timedSteps > 0 {
		perStep := time.Duration((st.waitNs + st.stepNs) / st.timedSteps)
		fmt.Fprintf(&b, " step %.0fms", ms(perStep))
		if total > 0 {
			left := time.Duration(max(total-st.steps, 0)) * perStep
			if r.knnRuns > 0 {
				epochsLeft := int64(max(s.cfg.Epochs-s.trainer.Epoch(), 0)) // the current epoch's kNN still to come
				left += time.Duration(epochsLeft) * r.knnTime / time.Duration(r.knnRuns)
			}
			fmt.Fprintf(&b, " left %s", left.Round(time.Second))
		}
	}
	return b.String()
}
