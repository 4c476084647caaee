package plots

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gonum.org/v1/plot/plotter"
)

func TestMovingAverageTrailsAndSkipsNaN(t *testing.T) {
	got := MovingAverage([]float64{1, 3, math.NaN(), 5, 7}, 2)
	want := []float64{1, 2, 3, 5, 6}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("moving average %v, want %v", got, want)
		}
	}
	if all := MovingAverage([]float64{math.NaN()}, 3); !math.IsNaN(all[0]) {
		t.Fatalf("average of nothing %v, want NaN", all[0])
	}
}

func TestSmoothQueueWindowIsTwoSeconds(t *testing.T) {
	filled := []float64{0, 1, 0, 1, 0, 1, 0, 1}
	q := SmoothQueue("decode", make([]float64, 8), filled, 0.5) // 4 samples a window
	if q.Stage != "decode" || math.Abs(q.Filled[7]-0.5) > 1e-12 || math.Abs(q.Filled[1]-0.5) > 1e-12 {
		t.Fatalf("smoothed %v", q.Filled)
	}
}

func checkPNG(t *testing.T, path string, minWidth int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if c, err := png.DecodeConfig(f); err != nil || c.Width < minWidth {
		t.Fatalf("%s: %+v %v", path, c, err)
	}
}

func TestDrawProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.png")
	p := Profile{Bottleneck: "decode", Cores: 2, SamplesPerS: 300, SuggestedPerS: 500, SuggestedLimit: "cpu",
		Stages: []ProfileStage{{Name: "read", Workers: 1, Suggested: 1, Unit: "samples", ItemsPerS: 300, Busy: 0.1, Blocked: 0.9},
			{Name: "decode", Workers: 1, Suggested: 3, Unit: "samples", ItemsPerS: 300, Busy: 0.9, Starved: 0.1}},
		Ops:    []ProfileOp{{Name: "hflip", Share: 1}},
		Queues: []QueueSeries{{Stage: "read", Seconds: []float64{1, 2}, Filled: []float64{math.NaN(), 1}}}}
	if err := DrawProfile(path, p); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, 1000)
	if err := DrawProfile(path, Profile{}); err == nil {
		t.Fatal("a profile without stages was drawn")
	}
}

// The loss and accuracy titles give the mean of the last steps, not the last, noisy one.
func TestMeanTailIsTheRecentMean(t *testing.T) {
	xys := plotter.XYs{{X: 1, Y: 9}, {X: 2, Y: 1}, {X: 3, Y: 2}, {X: 4, Y: 3}}
	if got := meanTail(xys, 3); got != 2 {
		t.Fatalf("mean of the last 3: %v, want 2", got)
	}
	if smoothWindow(96) != 4 || smoothWindow(10) != 2 {
		t.Fatalf("windows %d %d", smoothWindow(96), smoothWindow(10))
	}
}
