package monitor

import (
	"fmt"
	"image/color"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot draws items/s and queue occupancy per stage over time into a PNG, one panel each, so
// that a bottleneck that comes and goes can be seen.
func Plot(path string, samples []Sample) error {
	if len(samples) < 2 {
		return fmt.Errorf("too few samples to plot (%d); run longer", len(samples))
	}
	rate := plot.New()
	rate.Title.Text = "throughput per stage"
	rate.X.Label.Text = "seconds"
	rate.Y.Label.Text = "items/s"
	occ := plot.New()
	occ.Title.Text = "output queue occupancy"
	occ.X.Label.Text = "seconds"
	occ.Y.Label.Text = "fraction full"
	// Headroom above the data keeps the legend, top right, off the lines.
	occ.Y.Min, occ.Y.Max = 0, 1.6
	occ.Y.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "0"}, {Value: 0.5, Label: "0.5"}, {Value: 1, Label: "1"}})
	peak := 0.0
	for _, s := range samples {
		for _, st := range s.Stages {
			peak = max(peak, st.ItemsPerS)
		}
	}
	rate.Y.Min, rate.Y.Max = 0, max(1, 1.6*peak)
	rate.Y.Tick.Marker = plainTicks{}
	last := samples[len(samples)-1].Stages
	for i, st := range samples[0].Stages {
		r := make(plotter.XYs, len(samples))
		q := make(plotter.XYs, len(samples))
		for k, s := range samples {
			if i < len(s.Stages) {
				r[k] = plotter.XY{X: s.At, Y: s.Stages[i].ItemsPerS}
				q[k] = plotter.XY{X: s.At, Y: s.Stages[i].Queue}
			}
		}
		name := st.Name
		// A stage that passed far fewer items than the first one counts batches, not samples.
		if i > 0 && i < len(last) && last[i].Total < last[0].Total/2 {
			name += " (batches)"
		}
		c := palette[i%len(palette)]
		panels := []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{rate, r}, {occ, q}}
		if st.QueueCap == 0 {
			panels = panels[:1] // no output queue to show
		}
		for _, pair := range panels {
			l, err := plotter.NewLine(pair.xys)
			if err != nil {
				return err
			}
			l.Color = c
			l.Width = vg.Points(1.5)
			pair.p.Add(l)
			pair.p.Legend.Add(name, l)
		}
	}
	rate.Legend.Top = true
	occ.Legend.Top = true
	const w, h = 9 * vg.Inch, 7 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(10)}
	canvases := plot.Align([][]*plot.Plot{{rate}, {occ}}, tiles, dc)
	rate.Draw(canvases[0][0])
	occ.Draw(canvases[1][0])
	return savePNG(path, img)
}

// plainTicks are gonum's default ticks labelled without trailing zeros ("250", not "250.00").
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', -1, 64)
		}
	}
	return ticks
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
}

func savePNG(path string, img *vgimg.Canvas) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
