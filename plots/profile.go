package plots

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Profile is what the profile picture shows: where each stage's time went, what the augment
// ops cost, the worker split today and the suggested one, and the output queues over time.
type Profile struct {
	Title       string // e.g. the config and the run's length
	Stages      []ProfileStage
	Bottleneck  string
	Ops         []ProfileOp // may be empty (no augment stage)
	SamplesPerS float64     // measured with today's workers
	// SuggestedPerS is the samples/s predicted for the suggested workers, SuggestedLimit what
	// then limits them ("cpu" or a stage), Cores the cores they are sized for.
	SuggestedPerS  float64
	SuggestedLimit string
	Cores          int
	Queues         []QueueSeries
}

// ProfileStage is one stage over the run; Busy + Starved + Blocked is at most 1.
type ProfileStage struct {
	Name                   string
	Workers, Suggested     int
	ItemsPerS              float64
	Unit                   string // what an item is: "samples" or "batches"
	Busy, Starved, Blocked float64
}

// ProfileOp is one augmentation op's share of the augment workers' CPU time.
type ProfileOp struct {
	Name  string
	Share float64
}

// QueueSeries is one stage's output-queue occupancy (0..1) over time, smoothed.
type QueueSeries struct {
	Stage   string
	Seconds []float64
	Filled  []float64
}

// QueueWindow is the span of the moving average over queue occupancy: a bounded queue
// flickers between empty and full from one sample to the next, and what tells is where it sits.
const QueueWindow = 2.0 // seconds

// SmoothQueue turns sampled occupancies (one every interval seconds) into a QueueSeries.
func SmoothQueue(stage string, seconds, filled []float64, interval float64) QueueSeries {
	window := 1
	if interval > 0 {
		window = max(1, int(math.Round(QueueWindow/interval)))
	}
	return QueueSeries{Stage: stage, Seconds: seconds, Filled: MovingAverage(filled, window)}
}

// DrawProfile writes the profile picture to path: stage time (bottleneck marked), op shares,
// worker split and, when there is a timeline, the smoothed output queues.
func DrawProfile(path string, p Profile) error {
	if len(p.Stages) == 0 {
		return errors.New("profile picture: no stage to draw")
	}
	stages, err := stageTime(p)
	if err != nil {
		return err
	}
	split, err := workerSplit(p)
	if err != nil {
		return err
	}
	var ops, queues *plot.Plot
	if len(p.Ops) > 0 {
		if ops, err = opShares(p.Ops); err != nil {
			return err
		}
	}
	if len(p.Queues) > 0 {
		if queues, err = queuePlot(p.Queues); err != nil {
			return err
		}
	}
	if p.Title != "" {
		stages.Title.Text = p.Title + "\n" + stages.Title.Text
	}
	return drawGrid(path, [][]*plot.Plot{{stages, split}, {ops, queues}}, 12*vg.Inch, 8*vg.Inch)
}

// stageTime is a stacked bar per stage, in flow order from the top: busy, starved, blocked.
func stageTime(p Profile) (*plot.Plot, error) {
	n := len(p.Stages)
	pl := newPlot(fmt.Sprintf("where each stage's workers spend their time (bottleneck: %s)", p.Bottleneck))
	pl.X.Label.Text = "share of the stage's worker time"
	pl.X.Min, pl.X.Max = 0, 1.7 // room for the labels right of the bars
	pl.X.Tick.Marker = plot.ConstantTicks(percentLabels(0, 0.25, 0.5, 0.75, 1))
	names := make([]string, n)
	busy, starved, blocked := make(plotter.Values, n), make(plotter.Values, n), make(plotter.Values, n)
	var at plotter.XYs
	var texts []string
	for i, s := range p.Stages {
		row := n - 1 - i // the first stage on top
		names[row] = fmt.Sprintf("%s ×%d", s.Name, s.Workers)
		busy[row], starved[row], blocked[row] = s.Busy, s.Starved, s.Blocked
		text := fmt.Sprintf("%.0f %s/s", s.ItemsPerS, s.Unit)
		if s.Name == p.Bottleneck {
			text += "  ← bottleneck"
		}
		at = append(at, plotter.XY{X: s.Busy + s.Starved + s.Blocked, Y: float64(row)})
		texts = append(texts, text)
	}
	pl.NominalY(names...)
	var prev *plotter.BarChart
	for _, part := range []struct {
		name   string
		values plotter.Values
		color  color.Color
	}{{"busy", busy, blue}, {"starved (waits for input)", starved, grey}, {"blocked (waits on the next stage)", blocked, orange}} {
		b, err := plotter.NewBarChart(part.values, vg.Points(22))
		if err != nil {
			return nil, err
		}
		b.Horizontal = true
		b.Color = part.color
		b.LineStyle.Width = 0
		if prev != nil {
			b.StackOn(prev)
		}
		pl.Add(b)
		pl.Legend.Add(part.name, b)
		prev = b
	}
	l, err := labels(at, texts, vg.Points(13))
	if err != nil {
		return nil, err
	}
	pl.Add(l)
	pl.Legend.Top = true
	pl.Y.Max = float64(n) + 0.6 // the legend sits above the first stage
	return pl, nil
}

// workerSplit is today's workers beside the suggested ones, per stage, with both predictions.
func workerSplit(p Profile) (*plot.Plot, error) {
	n := len(p.Stages)
	title := fmt.Sprintf("workers today: %.0f samples/s measured\nsuggested for %d cores: %.0f samples/s predicted (then limited by %s)",
		p.SamplesPerS, p.Cores, p.SuggestedPerS, p.SuggestedLimit)
	pl := newPlot(title)
	pl.X.Label.Text = "workers"
	today, suggested := make(plotter.Values, n), make(plotter.Values, n)
	names := make([]string, n)
	var at plotter.XYs
	var texts []string
	peak := 1.0
	for i, s := range p.Stages {
		row := n - 1 - i
		names[row] = s.Name
		today[row], suggested[row] = float64(s.Workers), float64(s.Suggested)
		peak = max(peak, float64(s.Workers), float64(s.Suggested))
		text := fmt.Sprintf("%d", s.Workers)
		if s.Suggested != s.Workers {
			text += fmt.Sprintf(" → %d", s.Suggested)
		}
		at = append(at, plotter.XY{X: max(float64(s.Workers), float64(s.Suggested)), Y: float64(row)})
		texts = append(texts, text)
	}
	pl.NominalY(names...)
	const bar = 10
	for k, part := range []struct {
		name   string
		values plotter.Values
	}{{"today", today}, {"suggested", suggested}} {
		b, err := plotter.NewBarChart(part.values, vg.Points(bar))
		if err != nil {
			return nil, err
		}
		b.Horizontal = true
		b.Color = []color.Color{grey, green}[k]
		b.LineStyle.Width = 0
		b.Offset = vg.Points(float64(bar) * (0.5 - float64(k))) // today above, suggested below
		pl.Add(b)
		pl.Legend.Add(part.name, b)
	}
	l, err := labels(at, texts, vg.Points(13))
	if err != nil {
		return nil, err
	}
	pl.Add(l)
	pl.X.Min, pl.X.Max = 0, math.Ceil(peak*1.35)
	pl.Y.Max = float64(n) + 0.3
	pl.Legend.Top = true
	return pl, nil
}

// opShares is each augment op's share of the augment CPU time, largest first.
func opShares(ops []ProfileOp) (*plot.Plot, error) {
	ops = append([]ProfileOp(nil), ops...)
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Share > ops[j].Share })
	n := len(ops)
	pl := newPlot("augment ops: share of the augment stage's CPU")
	names := make([]string, n)
	values := make(plotter.Values, n)
	var at plotter.XYs
	var texts []string
	peak := 0.0
	for i, o := range ops {
		row := n - 1 - i
		names[row] = o.Name
		values[row] = o.Share
		peak = max(peak, o.Share)
		at = append(at, plotter.XY{X: o.Share, Y: float64(row)})
		texts = append(texts, fmt.Sprintf("%.0f%%", 100*o.Share))
	}
	pl.NominalY(names...)
	b, err := plotter.NewBarChart(values, vg.Points(14))
	if err != nil {
		return nil, err
	}
	b.Horizontal = true
	b.Color = purple
	b.LineStyle.Width = 0
	pl.Add(b)
	l, err := labels(at, texts, vg.Points(13))
	if err != nil {
		return nil, err
	}
	pl.Add(l)
	pl.X.Min, pl.X.Max = 0, max(0.1, peak*1.25)
	pl.X.Tick.Marker = percentTicks{}
	return pl, nil
}

func queuePlot(queues []QueueSeries) (*plot.Plot, error) {
	pl := newPlot(fmt.Sprintf("output queue filled (moving average over %.0f s)", QueueWindow))
	pl.X.Label.Text = "seconds"
	pl.Y.Min, pl.Y.Max = 0, 1.45
	pl.Y.Tick.Marker = plot.ConstantTicks(percentLabels(0, 0.5, 1))
	for i, q := range queues {
		xys := make(plotter.XYs, len(q.Seconds))
		for k := range q.Seconds {
			xys[k] = plotter.XY{X: q.Seconds[k], Y: q.Filled[k]}
		}
		l, err := line(pl, xys, palette[i%len(palette)], 2)
		if err != nil {
			return nil, err
		}
		if l != nil {
			pl.Legend.Add(q.Stage, l)
		}
	}
	pl.Legend.Top = true
	return pl, nil
}

func percentLabels(values ...float64) []plot.Tick {
	ticks := make([]plot.Tick, len(values))
	for i, v := range values {
		ticks[i] = plot.Tick{Value: v, Label: fmt.Sprintf("%.0f%%", 100*v)}
	}
	return ticks
}
