package augment

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/augment/internal/imageio"
	"pipeline/pipeline"
)

func parityDir(t testing.TB) string {
	t.Helper()
	shared, err := imageio.SharedDir(".")
	if err != nil {
		t.Skipf("parity vectors not found (shared/ must sit beside the repo root): %v", err)
	}
	return filepath.Join(shared, "testdata", "augment-parity")
}

type parityCase struct {
	name   string
	in     pipeline.Image
	want   pipeline.Image
	params pipeline.ViewParams
}

func loadParityCases(t testing.TB) []parityCase {
	t.Helper()
	dir := parityDir(t)
	f, err := os.Open(filepath.Join(dir, "cases.txt"))
	if err != nil {
		t.Fatalf("cases list: %v", err)
	}
	defer f.Close()
	var cases []parityCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		c := parityCase{name: name}
		if c.in, err = imageio.Load(filepath.Join(dir, name+".in.png")); err != nil {
			t.Fatal(err)
		}
		if c.want, err = imageio.Load(filepath.Join(dir, name+".want.png")); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, name+".params.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &c.params); err != nil {
			t.Fatalf("%s.params.json: %v", name, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("cases.txt lists no case")
	}
	return cases
}

// activeOps names the ops a view's params switch on, to tell which op a mismatch points at.
func activeOps(p pipeline.ViewParams) []string {
	ops := []string{OpCrop}
	if p.Jitter != nil {
		ops = append(ops, p.Jitter.Order...)
	}
	if p.Grayscale {
		ops = append(ops, OpGrayscale)
	}
	if p.BlurSigma != nil {
		ops = append(ops, OpBlur)
	}
	if p.Flip {
		ops = append(ops, OpFlip)
	}
	return ops
}

func pixelDiff(a, b pipeline.Image) (maxd int, mean float64) {
	var sum int
	for i := range a.Pix {
		d := int(a.Pix[i]) - int(b.Pix[i])
		d = max(d, -d)
		sum += d
		maxd = max(maxd, d)
	}
	return maxd, float64(sum) / float64(len(a.Pix))
}

// TestParityVectors replays every golden case and demands the exact pixels Pillow made.
func TestParityVectors(t *testing.T) {
	type agg struct {
		n, bad int
		maxd   int
		mean   float64
	}
	byOp := map[string]*agg{}
	for _, c := range loadParityCases(t) {
		got, err := Replay(c.in, c.params)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got.Width != c.want.Width || got.Height != c.want.Height {
			t.Errorf("%s: got %dx%d, want %dx%d", c.name, got.Width, got.Height, c.want.Width, c.want.Height)
			continue
		}
		maxd, mean := pixelDiff(got, c.want)
		for _, op := range activeOps(c.params) {
			a := byOp[op]
			if a == nil {
				a = &agg{}
				byOp[op] = a
			}
			a.n++
			if maxd > 0 {
				a.bad++
				a.maxd = max(a.maxd, maxd)
				a.mean += mean
			}
		}
		if maxd != 0 {
			t.Errorf("%s: not bit-exact: max |diff| %d, mean %.4f LSB; ops %v", c.name, maxd, mean, activeOps(c.params))
		}
	}
	if t.Failed() {
		for op, a := range byOp {
			t.Logf("op %-20s in %2d cases, %2d inexact, worst max %d", op, a.n, a.bad, a.maxd)
		}
	}
}
