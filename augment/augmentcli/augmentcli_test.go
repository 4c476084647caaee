package augmentcli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/augment/internal/imageio"
	"pipeline/pipeline"
)

func parity(t *testing.T) string {
	t.Helper()
	shared, err := imageio.SharedDir(".")
	if err != nil {
		t.Skipf("parity vectors not found (shared/ must sit beside the repo root): %v", err)
	}
	return filepath.Join(shared, "testdata", "augment-parity")
}

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Main(args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

func TestRenderThenReplay(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(parity(t), "case0007.in.png")
	stdout, _, err := run(t, "--input", in, "--recipe", "mocov2", "--seed", "9", "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	ls := lines(stdout)
	if len(ls) != 2 {
		t.Fatalf("printed %d param lines, want 2 (q and k):\n%s", len(ls), stdout)
	}
	for i, name := range []string{"000000-q-0", "000000-k-0"} {
		var p pipeline.ViewParams
		if err := json.Unmarshal([]byte(ls[i]), &p); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if p.Size != [2]int{224, 224} {
			t.Errorf("line %d size %v", i, p.Size)
		}
		want, err := imageio.Load(filepath.Join(dir, name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "replayed.png")
		if _, _, err := run(t, "--input", in, "--params", filepath.Join(dir, name+".json"), "--out", out); err != nil {
			t.Fatal(err)
		}
		got, err := imageio.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("%s: replaying its params gives other pixels", name)
		}
	}
	// --views 5 continues with the next samples.
	stdout, _, err = run(t, "--input", in, "--recipe", "mocov2", "--seed", "9", "--views", "5", "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(lines(stdout)); n != 5 {
		t.Errorf("--views 5 printed %d lines", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "000002-q-0.png")); err != nil {
		t.Error(err)
	}
}

func TestReplayParityCase(t *testing.T) {
	dir := parity(t)
	out := filepath.Join(t.TempDir(), "v.png")
	if _, _, err := run(t, "--input", filepath.Join(dir, "case0004.in.png"), "--params", filepath.Join(dir, "case0004.params.json"), "--out", out); err != nil {
		t.Fatal(err)
	}
	got, err := imageio.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := imageio.Load(filepath.Join(dir, "case0004.want.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Pix, want.Pix) {
		t.Error("CLI replay of case0004 is not bit-exact")
	}
}

func TestSampleMatchesRender(t *testing.T) {
	in := filepath.Join(parity(t), "case0007.in.png") // 500x375
	sampled, _, err := run(t, "--recipe", "mocov2", "--sample", "4", "--seed", "9", "--width", "500", "--height", "375")
	if err != nil {
		t.Fatal(err)
	}
	rendered, _, err := run(t, "--input", in, "--recipe", "mocov2", "--seed", "9", "--views", "4", "--out", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if sampled != rendered || len(lines(sampled)) != 4 {
		t.Errorf("--sample printed\n%s\nrendering printed\n%s", sampled, rendered)
	}
	other, _, err := run(t, "--recipe", "mocov2", "--sample", "4", "--seed", "10", "--width", "500", "--height", "375")
	if err != nil {
		t.Fatal(err)
	}
	if other == sampled {
		t.Error("seeds 9 and 10 sampled the same params")
	}
}

func TestGrid(t *testing.T) {
	out := filepath.Join(t.TempDir(), "new", "grid.png") // a folder that does not exist yet
	in := filepath.Join(parity(t), "case0021.in.png")
	if _, _, err := run(t, "--input", in, "--recipe", "dino", "--grid", "4x3", "--out", out); err != nil {
		t.Fatal(err)
	}
	im, err := imageio.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if im.Width != 4*224+5*4 || im.Height != 3*224+4*4 {
		t.Errorf("grid is %dx%d", im.Width, im.Height)
	}
}

func TestRecipeFromYAMLFile(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "views.yaml")
	doc := "groups:\n  - name: v\n    size: [32, 48]\n    ops:\n      - {op: random_resized_crop}\n      - {op: hflip, p: 1}\n"
	if err := os.WriteFile(spec, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := run(t, "--recipe", spec, "--sample", "2", "--width", "64", "--height", "64")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines(stdout) {
		var p pipeline.ViewParams
		if err := json.Unmarshal([]byte(l), &p); err != nil || !p.Flip || p.Size != [2]int{32, 48} {
			t.Errorf("record %s (%v)", l, err)
		}
	}
}

func TestErrors(t *testing.T) {
	in := filepath.Join(parity(t), "case0007.in.png")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--recipe", "mocov2", "--out", "x"}, "--input is required"},
		{[]string{"--input", in, "--out", "x"}, "--recipe is required"},
		{[]string{"--input", in, "--recipe", "nope", "--out", t.TempDir()}, `unknown recipe "nope"`},
		{[]string{"--input", in, "--recipe", "mocov2", "--grid", "4by4", "--out", "g.png"}, `--grid "4by4"`},
		// cols*rows overflows int to 0 here: each side is checked too
		{[]string{"--input", in, "--recipe", "mocov2", "--grid", "4611686018427387904x4", "--out", "g.png"}, "at most 1024 cells"},
		{[]string{"--recipe", "mocov2", "--sample", "3"}, "--width"},
		{[]string{"--input", in, "--params", "p.json", "--grid", "2x2", "--out", "o.png"}, "different modes"},
		{[]string{"--input", "/nonexistent.png", "--recipe", "mocov2", "--out", t.TempDir()}, "nonexistent.png"},
		{[]string{"--bogus"}, "flag provided but not defined"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		_, _, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
	bad := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(bad, []byte(`{"crop": {"top": 0}, "size": [224, 224], "colour": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "--input", in, "--params", bad, "--out", filepath.Join(t.TempDir(), "o.png")); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown params field: %v", err)
	}
	if err := os.WriteFile(bad, []byte(`{"crop": {"top": 0, "left": 0, "height": 8, "width": 8}, "size": [1000000, 1000000]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "--input", in, "--params", bad, "--out", filepath.Join(t.TempDir(), "o.png")); err == nil || !strings.Contains(err.Error(), "want [height, width] of 1 to 4096") {
		t.Errorf("a size of 10^6 x 10^6: %v", err)
	}
	_, stderr, err := run(t, "-h")
	if err != nil || !strings.Contains(stderr, "usage: pipeline augment") || !strings.Contains(stderr, "mocov2") {
		t.Errorf("-h: %v\n%s", err, stderr)
	}
}
