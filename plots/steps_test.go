package plots

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func step(i int64) StepPoint {
	return StepPoint{Step: i, Epoch: int(i / 10), N: 1, Loss: float64(i), Accuracy: 0.5, LR: 0.1, TimedN: 1, StepMs: 10, WaitMs: float64(i % 2)}
}

// A full log merges neighbours into means and keeps covering every step, in order, within Cap.
func TestStepLogStaysBoundedAndKeepsMeans(t *testing.T) {
	l := StepLog{Cap: 8}
	first := step(1)
	first.TimedN, first.StepMs, first.WaitMs = 0, 0, 0 // the compiling step
	l.Add(first)
	for i := int64(2); i <= 100; i++ {
		l.Add(step(i))
		if n := len(l.Points()); n > 8 {
			t.Fatalf("%d points after %d steps, cap 8", n, i)
		}
	}
	pts := l.Points()
	covered, prev := 0, int64(0)
	for _, p := range pts {
		covered += p.N
		if p.Step <= prev {
			t.Fatalf("points out of order: %+v", pts)
		}
		prev = p.Step
		// Loss is the step number: a merged point's loss is the mean of the steps it covers.
		if want := float64(2*p.Step-int64(p.N)+1) / 2; math.Abs(p.Loss-want) > 1e-9 {
			t.Fatalf("point %+v: loss %v, want the mean %v", p, p.Loss, want)
		}
	}
	if covered != 100 || prev != 100 {
		t.Fatalf("points cover %d steps up to %d, want 100: %+v", covered, prev, pts)
	}
	if pts[0].TimedN != pts[0].N-1 || pts[0].StepMs != 10 {
		t.Fatalf("first point %+v: the compiling step must not count in the step time", pts[0])
	}
	if f := pts[len(pts)-1].WaitFraction(); f <= 0 || f >= 1 {
		t.Fatalf("wait fraction %v", f)
	}
	if !math.IsNaN(first.WaitFraction()) {
		t.Fatal("a step without timings has a wait fraction")
	}
}

func TestWriteCSVAndDrawTraining(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "training.png")
	tr := Training{FirstStepS: 3, KNN: []KNNPoint{{0, 0.3}, {1, 0.5}, {2, 0.6}}}
	untimed := step(1)
	untimed.TimedN = 0
	tr.Steps = append(tr.Steps, untimed)
	for i := int64(2); i <= 40; i++ {
		tr.Steps = append(tr.Steps, step(i))
	}
	if err := DrawTraining(path, tr); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, 1000)
	if err := WriteCSV(path, tr); err != nil {
		t.Fatal(err)
	}
	stepsPath, knnPath := CSVPaths(path)
	if stepsPath != filepath.Join(dir, "training.csv") || knnPath != filepath.Join(dir, "training-knn.csv") {
		t.Fatalf("csv paths %s %s", stepsPath, knnPath)
	}
	rows := readCSV(t, stepsPath)
	if len(rows) != 41 || strings.Join(rows[0], ",") != "step,epoch,steps,loss,instance_accuracy,lr,step_ms,data_wait_ms,data_wait_fraction" {
		t.Fatalf("steps csv header %v, %d rows", rows[0], len(rows))
	}
	if rows[1][6] != "" || rows[1][8] != "" || strings.Join(rows[3], ",") != "3,0,1,3,0.5,0.1,10,1,0.0909091" {
		t.Fatalf("rows %v / %v", rows[1], rows[3])
	}
	knn := readCSV(t, knnPath)
	if len(knn) != 4 || strings.Join(knn[1], ",") != "0,0.3" || strings.Join(knn[3], ",") != "2,0.6" {
		t.Fatalf("knn csv %v", knn)
	}
	if err := DrawTraining(path, Training{}); err == nil {
		t.Fatal("a report without steps was drawn")
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
