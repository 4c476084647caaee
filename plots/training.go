package plots

import (
	"errors"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// smoothFrom is the number of points above which a per-step panel gets a moving average over
// smoothShare of them on top of the raw, faint line: step-to-step noise hides the trend.
const (
	smoothFrom  = 30
	smoothShare = 0.05
)

// DrawTraining writes the training report to path: loss, instance accuracy, learning rate,
// step time and data-wait fraction per step, and the kNN accuracy per epoch from init.
func DrawTraining(path string, t Training) error {
	if len(t.Steps) == 0 {
		return errors.New("training report: no step to draw")
	}
	col := func(get func(StepPoint) float64) plotter.XYs {
		xys := make(plotter.XYs, len(t.Steps))
		for i, p := range t.Steps {
			xys[i] = plotter.XY{X: float64(p.Step), Y: get(p)}
		}
		return xys
	}
	timed := func(v func(StepPoint) float64) func(StepPoint) float64 {
		return func(p StepPoint) float64 {
			if p.TimedN == 0 {
				return math.NaN()
			}
			return v(p)
		}
	}
	loss, acc := col(func(p StepPoint) float64 { return p.Loss }), col(func(p StepPoint) float64 { return p.Accuracy })
	// One step's loss and accuracy are noisy: the titles give the mean of the last few.
	recent := min(len(t.Steps), max(1, smoothWindow(len(t.Steps))))
	panels := []struct {
		title  string
		xys    plotter.XYs
		c      color.Color
		ticks  plot.Ticker
		smooth bool
	}{
		{fmt.Sprintf("InfoNCE loss (last %d steps: %.3f)", recent, meanTail(loss, recent)), loss, blue, nil, true},
		{fmt.Sprintf("instance accuracy, top-1 of 1+K (last %d steps: %.0f%%)", recent, 100*meanTail(acc, recent)), acc, green, percentTicks{}, true},
		// The schedule is exact: averaging would only blur its steps.
		{"learning rate", col(func(p StepPoint) float64 { return p.LR }), purple, nil, false},
		{stepTimeTitle(t), col(timed(func(p StepPoint) float64 { return p.StepMs })), brown, nil, true},
		{"share of the time waiting for data", col(StepPoint.WaitFraction), orange, percentTicks{}, true},
	}
	var plots []*plot.Plot
	for _, pn := range panels {
		p := newPlot(pn.title)
		p.X.Label.Text = "step"
		if pn.ticks != nil {
			p.Y.Tick.Marker = pn.ticks
		}
		if err := stepLines(p, pn.xys, pn.c, pn.smooth); err != nil {
			return err
		}
		plots = append(plots, p)
	}
	plots[0].Y.Min = 0
	plots[1].Y.Min, plots[1].Y.Max = 0, max(plots[1].Y.Max, 0.05)
	plots[2].Y.Min = 0
	plots[3].Y.Min = 0
	plots[4].Y.Min, plots[4].Y.Max = 0, max(plots[4].Y.Max, 0.1)
	knn, err := knnPlot(t.KNN)
	if err != nil {
		return err
	}
	plots = append(plots, knn)
	if t.Title != "" {
		plots[0].Title.Text = t.Title + "\n" + plots[0].Title.Text
		plots[1].Title.Text = "\n" + plots[1].Title.Text // keeps the row's panels level
	}
	return drawGrid(path, [][]*plot.Plot{plots[0:2], plots[2:4], plots[4:6]}, 11*vg.Inch, 10*vg.Inch)
}

func stepTimeTitle(t Training) string {
	if t.FirstStepS > 0 {
		return fmt.Sprintf("training step, ms (first step %.1f s with compilation, left out)", t.FirstStepS)
	}
	return "training step, ms"
}

// smoothWindow is the moving average's span over n points.
func smoothWindow(n int) int { return max(2, int(smoothShare*float64(n))) }

// meanTail is the mean of the last n values that are numbers.
func meanTail(xys plotter.XYs, n int) float64 {
	ys := make([]float64, len(xys))
	for i := range xys {
		ys[i] = xys[i].Y
	}
	return MovingAverage(ys, n)[len(ys)-1]
}

// stepLines draws a per-step series: raw, and over it a moving average when it is long and
// smooth is set.
func stepLines(p *plot.Plot, xys plotter.XYs, c color.Color, smooth bool) error {
	if len(xys) <= smoothFrom || !smooth {
		l, err := line(p, xys, c, 2)
		if l != nil && len(xys) < 12 {
			// Few points: show where they are.
			s, _ := plotter.NewScatter(dropNaN(xys))
			if s != nil {
				s.Color, s.Shape, s.Radius = c, draw.CircleGlyph{}, vg.Points(2.5)
				p.Add(s)
			}
		}
		return err
	}
	r, g, b, _ := c.RGBA() // the palette is opaque: these are the plain channels
	if _, err := line(p, xys, color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 0x60}, 1); err != nil {
		return err
	}
	ys := make([]float64, len(xys))
	for i := range xys {
		ys[i] = xys[i].Y
	}
	avg := MovingAverage(ys, smoothWindow(len(ys)))
	sm := make(plotter.XYs, len(xys))
	for i := range xys {
		sm[i] = plotter.XY{X: xys[i].X, Y: avg[i]}
	}
	_, err := line(p, sm, c, 2.5)
	return err
}

func dropNaN(xys plotter.XYs) plotter.XYs {
	var out plotter.XYs
	for _, xy := range xys {
		if !math.IsNaN(xy.Y) {
			out = append(out, xy)
		}
	}
	return out
}

// knnPlot is the kNN accuracy per epoch, epoch 0 being the untrained encoder.
func knnPlot(points []KNNPoint) (*plot.Plot, error) {
	title := "kNN accuracy per epoch (no kNN monitor)"
	if n := len(points); n > 0 {
		title = fmt.Sprintf("kNN accuracy per epoch: %.1f%% at init, %.1f%% last", 100*points[0].Accuracy, 100*points[n-1].Accuracy)
		if points[0].Epoch != 0 {
			title = fmt.Sprintf("kNN accuracy per epoch (%.1f%% last)", 100*points[n-1].Accuracy)
		}
	}
	p := newPlot(title)
	p.X.Label.Text = "epoch (0: at init)"
	p.Y.Tick.Marker = percentTicks{}
	p.Y.Min, p.Y.Max = 0, 1
	if len(points) == 0 {
		p.X.Min, p.X.Max = 0, 1
		return p, nil
	}
	xys := make(plotter.XYs, len(points))
	for i, k := range points {
		xys[i] = plotter.XY{X: float64(k.Epoch), Y: k.Accuracy}
	}
	if _, err := line(p, xys, red, 2); err != nil {
		return nil, err
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return nil, err
	}
	s.Color, s.Shape, s.Radius = red, draw.CircleGlyph{}, vg.Points(3.5)
	p.Add(s)
	p.X.Min = 0
	p.X.Max = max(1, float64(points[len(points)-1].Epoch))
	p.X.Tick.Marker = epochTicks{}
	return p, nil
}

// epochTicks are whole epochs only.
type epochTicks struct{}

func (epochTicks) Ticks(min, max float64) []plot.Tick {
	step := math.Max(1, math.Ceil((max-min)/10))
	var ticks []plot.Tick
	for v := math.Ceil(min); v <= max+1e-9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: fmt.Sprintf("%.0f", v)})
	}
	return ticks
}
