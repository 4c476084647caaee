package plots

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"strconv"
)

// StepPoint is one training step, or the mean of N consecutive ones once a long run's log has
// merged them. TimedN of them have a step and data-wait time (the first step, which compiles,
// has none).
type StepPoint struct {
	Step     int64 // the last step it covers, counting from 1
	Epoch    int   // of that step, counting from 0
	N        int
	Loss     float64
	Accuracy float64 // instance discrimination top-1
	LR       float64
	TimedN   int
	StepMs   float64 // mean time of a training step
	WaitMs   float64 // mean time waited for its batch
}

// WaitFraction is the share of the time the trainer waited for data; NaN without timings.
func (p StepPoint) WaitFraction() float64 {
	if p.TimedN == 0 || p.StepMs+p.WaitMs <= 0 {
		return math.NaN()
	}
	return p.WaitMs / (p.StepMs + p.WaitMs)
}

// merge is the mean of p and q, q the later.
func merge(p, q StepPoint) StepPoint {
	n := float64(p.N + q.N)
	out := StepPoint{Step: q.Step, Epoch: q.Epoch, N: p.N + q.N, TimedN: p.TimedN + q.TimedN,
		Loss:     (p.Loss*float64(p.N) + q.Loss*float64(q.N)) / n,
		Accuracy: (p.Accuracy*float64(p.N) + q.Accuracy*float64(q.N)) / n,
		LR:       (p.LR*float64(p.N) + q.LR*float64(q.N)) / n}
	if t := float64(out.TimedN); t > 0 {
		out.StepMs = (p.StepMs*float64(p.TimedN) + q.StepMs*float64(q.TimedN)) / t
		out.WaitMs = (p.WaitMs*float64(p.TimedN) + q.WaitMs*float64(q.TimedN)) / t
	}
	return out
}

// StepLog keeps a run's steps in at most Cap points: when it is full, neighbours are merged
// pairwise and later points cover twice the steps, so a run of any length costs the same
// memory and its whole history stays drawn.
type StepLog struct {
	Cap     int
	points  []StepPoint
	pending *StepPoint // the point being filled, up to perPoint steps
	per     int        // steps a point covers now
}

// DefaultStepLogCap points are far more than a picture's width in pixels needs.
const DefaultStepLogCap = 4096

// Add records one step (N 1; TimedN 1 if it has timings).
func (l *StepLog) Add(p StepPoint) {
	if l.per == 0 {
		l.per, l.Cap = 1, max(l.Cap, 2)
	}
	if l.pending != nil {
		p = merge(*l.pending, p)
		l.pending = nil
	}
	if p.N < l.per {
		l.pending = &p
		return
	}
	l.points = append(l.points, p)
	if len(l.points) < l.Cap {
		return
	}
	merged := l.points[:0]
	for i := 0; i+1 < len(l.points); i += 2 {
		merged = append(merged, merge(l.points[i], l.points[i+1]))
	}
	if len(l.points)%2 == 1 {
		last := l.points[len(l.points)-1]
		l.pending = &last
	}
	l.points, l.per = merged, 2*l.per
}

// Points is a copy of the log, the point being filled included.
func (l *StepLog) Points() []StepPoint {
	out := append([]StepPoint(nil), l.points...)
	if l.pending != nil {
		out = append(out, *l.pending)
	}
	return out
}

// KNNPoint is the kNN monitor's accuracy after an epoch: Epoch 0 is at init, before any step,
// Epoch e after the e-th epoch.
type KNNPoint struct {
	Epoch    int
	Accuracy float64
}

// Training is what the training report shows.
type Training struct {
	Title string
	Steps []StepPoint
	KNN   []KNNPoint
	// FirstStepS is the first step's time, compilation included: left out of the step times.
	FirstStepS float64
}

// CSVPaths are the files WriteCSV writes beside a report picture F.png: F.csv (per step) and
// F-knn.csv (per epoch).
func CSVPaths(png string) (steps, knn string) {
	base := png
	if len(base) > 4 && base[len(base)-4:] == ".png" {
		base = base[:len(base)-4]
	}
	return base + ".csv", base + "-knn.csv"
}

// WriteCSV writes t's series beside the picture at png (see CSVPaths); a step without timings
// has empty time columns.
func WriteCSV(png string, t Training) error {
	stepsPath, knnPath := CSVPaths(png)
	f := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	rows := [][]string{{"step", "epoch", "steps", "loss", "instance_accuracy", "lr", "step_ms", "data_wait_ms", "data_wait_fraction"}}
	for _, p := range t.Steps {
		stepMs, waitMs := p.StepMs, p.WaitMs
		if p.TimedN == 0 {
			stepMs, waitMs = math.NaN(), math.NaN()
		}
		rows = append(rows, []string{strconv.FormatInt(p.Step, 10), strconv.Itoa(p.Epoch), strconv.Itoa(p.N),
			f(p.Loss), f(p.Accuracy), f(p.LR), f(stepMs), f(waitMs), f(p.WaitFraction())})
	}
	if err := writeCSV(stepsPath, rows); err != nil {
		return err
	}
	rows = [][]string{{"epoch", "knn_accuracy"}}
	for _, k := range t.KNN {
		rows = append(rows, []string{strconv.Itoa(k.Epoch), f(k.Accuracy)})
	}
	return writeCSV(knnPath, rows)
}

// writeCSV replaces path whole (a report rewritten every epoch is never seen half written).
func writeCSV(path string, rows [][]string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.WriteAll(rows)
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
