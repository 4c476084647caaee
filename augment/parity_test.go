package augment

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/augment/internal/imageio"
	"pipeline/augment/ops"
	"pipeline/pipeline"
)

// The golden views come in two sets made by one generator (testdata/make_parity_views.py) from
// the same inputs and parameters: shared/testdata/augment-parity with torchvision 0.14.1 +
// Pillow 9.4.0 (Debian 12), and testdata/parity-tv0.29.2-pillow13.0.0 with the PyPI releases.
const pillow13Dir = "testdata/parity-tv0.29.2-pillow13.0.0"

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

// loadParityCases reads the cases listed in caseDir/cases.txt: input and parameters from
// caseDir, the expected view from wantDir.
func loadParityCases(t testing.TB, caseDir, wantDir string) []parityCase {
	t.Helper()
	f, err := os.Open(filepath.Join(caseDir, "cases.txt"))
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
		if c.in, err = imageio.Load(filepath.Join(caseDir, name+".in.png")); err != nil {
			t.Fatal(err)
		}
		if c.want, err = imageio.Load(filepath.Join(wantDir, name+".want.png")); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(caseDir, name+".params.json"))
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

// checkBitExact renders every case with render and demands the exact pixels of its want view;
// on failure it logs which ops the inexact cases had in common.
func checkBitExact(t *testing.T, cases []parityCase, render func(parityCase) (pipeline.Image, error)) {
	type agg struct{ n, bad, maxd int }
	byOp := map[string]*agg{}
	for _, c := range cases {
		got, err := render(c)
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

// TestParityVectors replays every golden case of torchvision 0.14.1 + Pillow 9.4.0 and demands
// the exact pixels Pillow made.
func TestParityVectors(t *testing.T) {
	dir := parityDir(t)
	checkBitExact(t, loadParityCases(t, dir, dir), func(c parityCase) (pipeline.Image, error) {
		return Replay(c.in, c.params)
	})
}

// pillow13RowsFirst says whether Pillow 13 resizes the crop's rows (the vertical pass) before
// its columns: when the height shrinks and 2*(crop width - width) < crop height - height.
// Pillow up to 12 and our ResizedCropFlip always run the horizontal pass first. The rule was
// measured on Pillow 13.0.0 (docs/augment-parity.md); a wrong rule fails the test below.
func pillow13RowsFirst(p pipeline.ViewParams) bool {
	h, w := p.Size[0], p.Size[1]
	return p.Crop.Width != w && p.Crop.Height > h && 2*(p.Crop.Width-w) < p.Crop.Height-h
}

// replayRowsFirst renders p with our kernels in Pillow 13's vertical-then-horizontal order: a
// crop that keeps its width resizes only the rows, then a full-width crop of that only the columns.
func replayRowsFirst(src pipeline.Image, p pipeline.ViewParams) (pipeline.Image, error) {
	rows := ops.NewImage(p.Crop.Width, p.Size[0])
	if err := ops.ResizedCropFlip(rows, src, p.Crop, false, nil); err != nil {
		return pipeline.Image{}, err
	}
	p.Crop = pipeline.Crop{Width: p.Crop.Width, Height: p.Size[0]}
	return Replay(rows, p)
}

// TestParityVectorsPillow13 checks the views of torchvision 0.29.2 + Pillow 13.0.0 (same inputs
// and parameters): bit-exact with Replay wherever Pillow 13 resizes columns first, and, where
// it resizes rows first, bit-exact with the same kernels in that order, and different from Replay
// in at least one such case (else the set would not show the difference the docs describe).
func TestParityVectorsPillow13(t *testing.T) {
	dir := parityDir(t)
	checkInputsUnchanged(t, dir, filepath.Join(pillow13Dir, "INPUTS.sha256"))
	cases := loadParityCases(t, dir, pillow13Dir)
	var rowsFirst, differs int
	checkBitExact(t, cases, func(c parityCase) (pipeline.Image, error) {
		if !pillow13RowsFirst(c.params) {
			return Replay(c.in, c.params)
		}
		rowsFirst++
		if ours, err := Replay(c.in, c.params); err == nil {
			if maxd, _ := pixelDiff(ours, c.want); maxd > 0 {
				differs++
				t.Logf("%s: Pillow 13 resizes rows first; Replay (columns first) is off by up to %d LSB", c.name, maxd)
			}
		}
		return replayRowsFirst(c.in, c.params)
	})
	if rowsFirst == 0 || differs == 0 {
		t.Errorf("%d cases resized rows first, %d of them differ from Replay: want at least one of each", rowsFirst, differs)
	}
}

// checkInputsUnchanged compares the inputs and parameters in dir with the hashes the Pillow 13
// views were made from (sha256sum format), so that a changed shared set cannot pass unnoticed.
func checkInputsUnchanged(t *testing.T, dir, sums string) {
	t.Helper()
	raw, err := os.ReadFile(sums)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		want, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("%s: bad line %q", sums, line)
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != want {
			t.Errorf("%s changed since %s was made: regenerate it (see its README)", name, filepath.Dir(sums))
		}
	}
}
