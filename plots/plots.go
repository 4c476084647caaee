// Package plots draws the project's pictures (the profile at a glance, a training run's curves)
// from plain numbers, so that what a picture shows can be tested on its inputs and the package
// depends on neither the runtime nor a sink.
package plots

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Pictures are drawn at 96 dpi.
const dpi = 96

var (
	blue   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	orange = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	green  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	red    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	purple = color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}
	brown  = color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff}
	grey   = color.RGBA{R: 0xc7, G: 0xc7, B: 0xc7, A: 0xff}

	palette = []color.Color{blue, orange, green, red, purple, brown}
)

// newPlot is a plot with the project's font sizes: titles 15pt, labels and ticks 13pt (a README
// column shows a 12-inch picture at about three quarters of its size).
func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(15)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = vg.Points(13)
		a.Tick.Label.Font.Size = vg.Points(13)
	}
	p.Legend.TextStyle.Font.Size = vg.Points(13)
	p.Legend.Padding = vg.Points(2)
	p.Y.Tick.Marker = plainTicks{}
	p.X.Tick.Marker = plainTicks{}
	return p
}

// plainTicks are gonum's default ticks labelled without trailing zeros ("250", not "250.00").
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', 4, 64)
		}
	}
	return ticks
}

// percentTicks label a 0..1 axis in percent.
type percentTicks struct{}

func (percentTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = fmt.Sprintf("%.0f%%", 100*ticks[i].Value)
		}
	}
	return ticks
}

// labels puts text at data coordinates, left-aligned and vertically centred.
func labels(xys plotter.XYs, texts []string, size vg.Length) (*plotter.Labels, error) {
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font = font.From(plot.DefaultFont, size)
		l.TextStyle[i].YAlign = draw.YCenter
	}
	l.Offset = vg.Point{X: vg.Points(4)}
	return l, nil
}

// line adds a line through xys to p (skipping NaN points, which gonum cannot draw).
func line(p *plot.Plot, xys plotter.XYs, c color.Color, width float64) (*plotter.Line, error) {
	clean := xys[:0:0]
	for _, xy := range xys {
		if !math.IsNaN(xy.Y) && !math.IsInf(xy.Y, 0) {
			clean = append(clean, xy)
		}
	}
	if len(clean) == 0 {
		return nil, nil
	}
	l, err := plotter.NewLine(clean)
	if err != nil {
		return nil, err
	}
	l.Color = c
	l.Width = vg.Points(width)
	p.Add(l)
	return l, nil
}

// drawGrid draws plots in rows (a nil plot leaves its tile empty) onto a w x h inch PNG.
func drawGrid(path string, rows [][]*plot.Plot, w, h vg.Length) error {
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(rows), Cols: len(rows[0]), PadX: vg.Points(14), PadY: vg.Points(14),
		PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(10)}
	for r, row := range rows {
		for c, p := range row {
			if p != nil {
				p.Draw(tiles.At(dc, c, r))
			}
		}
	}
	// Written aside and renamed: a picture redrawn during a run is never seen half written.
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// MovingAverage is the mean of each value and the window-1 before it (fewer at the start),
// NaN values left out: a centred window would hide the end of a run, where it matters most.
func MovingAverage(values []float64, window int) []float64 {
	window = max(window, 1)
	out := make([]float64, len(values))
	sum, n := 0.0, 0
	for i, v := range values {
		if !math.IsNaN(v) {
			sum += v
			n++
		}
		if j := i - window; j >= 0 && !math.IsNaN(values[j]) {
			sum -= values[j]
			n--
		}
		out[i] = math.NaN()
		if n > 0 {
			out[i] = sum / float64(n)
		}
	}
	return out
}
