package augment

import (
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"pipeline/pipeline"
)

type specDoc struct {
	Views Spec `yaml:"views"`
}

func decodeSpec(t *testing.T, doc string) (Spec, error) {
	t.Helper()
	var c specDoc
	err := yaml.UnmarshalWithOptions([]byte(doc), &c, yaml.DisallowUnknownField())
	return c.Views, err
}

func TestSpecScalarName(t *testing.T) {
	s, err := decodeSpec(t, "views: mocov2\n")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []GroupInfo{{"q", 1, 224, 224}, {"k", 1, 224, 224}}
	if got := r.Groups(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("mocov2 groups %+v, want %+v", got, want)
	}
	if r.ViewBytes() != 2*224*224*3 {
		t.Errorf("ViewBytes %d", r.ViewBytes())
	}
}

func TestSpecMappingAdjustsNamedRecipe(t *testing.T) {
	s, err := decodeSpec(t, "views: {recipe: dino, size: 192, local_size: [80, 64], local_views: 8, keep_params: true}\n")
	if err != nil {
		t.Fatal(err)
	}
	if !s.KeepParams {
		t.Error("keep_params lost")
	}
	r, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	g := r.Groups()
	if len(g) != 2 || g[0] != (GroupInfo{"global", 2, 192, 192}) || g[1] != (GroupInfo{"local", 8, 80, 64}) {
		t.Errorf("dino groups %+v", g)
	}
	// Defaults: 224 global, 6 local views of 96.
	r, err = Build(Spec{Recipe: "dino"})
	if err != nil {
		t.Fatal(err)
	}
	if g := r.Groups(); g[0] != (GroupInfo{"global", 2, 224, 224}) || g[1] != (GroupInfo{"local", 6, 96, 96}) {
		t.Errorf("dino default groups %+v", g)
	}
}

func TestSpecCustomGroups(t *testing.T) {
	doc := `
views:
  keep_params: true
  groups:
    - name: anchor
      size: [160, 128]
      views: 3
      ops:
        - {op: random_resized_crop, scale: [0.3, 0.9]}
        - {op: grayscale, p: 0.5}
        - {op: color_jitter, p: 1, brightness: [0.5, 1.5], hue: 0.2}
        - {op: gaussian_blur, p_views: [1, 0], sigma: [0.5, 1.0]}
        - {op: solarize, p: 0.25}
`
	s, err := decodeSpec(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != "custom" || r.Groups()[0] != (GroupInfo{"anchor", 3, 160, 128}) {
		t.Fatalf("custom recipe %s %+v", r.Name(), r.Groups())
	}
	st := r.groups[0].steps
	crop := st[0].sampler.(cropParams)
	if crop.scale != [2]float64{0.3, 0.9} || crop.ratio != [2]float64{3.0 / 4, 4.0 / 3} {
		t.Errorf("crop ranges %v %v", crop.scale, crop.ratio)
	}
	j := st[2].sampler.(jitterParams)
	if j.brightness != (span{0.5, 1.5, true}) || j.hue != (span{-0.2, 0.2, true}) || j.contrast.on || j.saturation.on {
		t.Errorf("jitter spans %+v", j)
	}
	if st[3].prob(0) != 1 || st[3].prob(1) != 0 || st[3].prob(2) != 1 {
		t.Errorf("p_views not applied: %v %v %v", st[3].prob(0), st[3].prob(1), st[3].prob(2))
	}
	// The order of the ops is the recipe's: grayscale runs before jitter here.
	if got := strings.Join(r.groups[0].order, ","); got != "random_resized_crop,grayscale,color_jitter,gaussian_blur,solarize" {
		t.Errorf("order %s", got)
	}
}

func TestSpecErrorsNameTheField(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"views: mocov9\n", `recipe: unknown recipe "mocov9"`},
		{"views: {recipe: mocov2, sise: 224}\n", "sise"},
		{"views: {recipe: mocov2, local_views: 4}\n", "local_views: only the dino recipe"},
		{"views: {recipe: dino, local_views: 0}\n", "local_views: 0"},
		{"views: {}\n", "recipe: missing"},
		{"views: {recipe: mocov2, groups: [{name: a, size: 9, ops: [{op: random_resized_crop}]}]}\n", "recipe and groups"},
		{"views: {groups: [{name: a, size: 9, ops: [{op: random_resized_crop}, {op: hflip, p: 1.5}]}]}\n", "groups[0].ops[1].p: 1.5 is outside [0, 1]"},
		{"views: {groups: [{name: a, size: 9, ops: [{op: hflip}]}]}\n", "groups[0].ops[0]: the first op must be random_resized_crop"},
		{"views: {groups: [{name: a, size: 9, ops: [{op: random_resized_crop, sigma: [1, 2]}]}]}\n", "groups[0].ops[0].sigma: not a parameter of random_resized_crop"},
		{"views: {groups: [{name: a, size: 9, ops: [{op: random_resized_crop, scale: [0.5, 0.2]}]}]}\n", "groups[0].ops[0].scale: [0.5, 0.2]"},
		{"views: {groups: [{name: a, size: 9, ops: [{op: random_resized_crop}, {op: color_jitter, hue: 0.7}]}]}\n", "groups[0].ops[1].hue"},
		{"views: {groups: [{name: a, size: 9, ops: [{op: random_resized_crop}, {op: blur}]}]}\n", `groups[0].ops[1].op: unknown op "blur"`},
		{"views: {groups: [{name: a, size: 9, ops: [{op: random_resized_crop}, {op: hflip}, {op: hflip}]}]}\n", "groups[0].ops[2].op: hflip appears twice"},
		{"views: {groups: [{name: a, ops: [{op: random_resized_crop}]}]}\n", "groups[0].size: missing"},
		{"views: {groups: [{name: a, size: 9, views: 100, ops: [{op: random_resized_crop}]}]}\n", "groups[0].views: 100"},
		{"views: {groups: [{name: a, size: 9, ops: [{op: random_resized_crop}]}, {name: a, size: 9, ops: [{op: random_resized_crop}]}]}\n", `groups[1].name: "a" used twice`},
		{"views: {size: 100, groups: [{name: a, size: 9, ops: [{op: random_resized_crop}]}]}\n", "size: only adjusts a named recipe"},
		{"views: [1, 2]\n", "want a recipe name"},
	} {
		s, err := decodeSpec(t, c.doc)
		if err == nil {
			_, err = Build(s)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to contain %q", c.doc, err, c.want)
		}
	}
}

func TestNamedRecipesBuild(t *testing.T) {
	for _, name := range Recipes() {
		if _, err := Build(Spec{Recipe: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := strings.Join(Recipes(), ","); got != "byol,dino,mocov1,mocov2,simclr" {
		t.Errorf("Recipes() = %s", got)
	}
}

// TestHugeBlurSigma: a sigma whose square overflows float32 made Pillow's box radius NaN, and
// the blur then sliced with a negative index (a panic that stopped the run). Such sigmas are
// refused by the spec, and a replayed one is an error.
func TestHugeBlurSigma(t *testing.T) {
	doc := "views: {groups: [{name: a, size: 9, ops: [{op: random_resized_crop}, {op: gaussian_blur, sigma: [0.1, 1e39]}]}]}\n"
	s, err := decodeSpec(t, doc)
	if err == nil {
		_, err = Build(s)
	}
	if err == nil || !strings.Contains(err.Error(), "groups[0].ops[1].sigma") {
		t.Errorf("sigma [0.1, 1e39]: error %v, want one naming groups[0].ops[1].sigma", err)
	}
	src := pipeline.Image{Width: 8, Height: 8, Pix: make([]uint8, 8*8*3)}
	for _, sigma := range []float64{2e19, 1e39, -1e39} {
		p := pipeline.ViewParams{Size: [2]int{4, 4}, Crop: pipeline.Crop{Height: 8, Width: 8}, BlurSigma: &sigma}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Replay with sigma %v panicked: %v", sigma, r)
				}
			}()
			if _, err := Replay(src, p); err == nil {
				t.Errorf("Replay with sigma %v: no error", sigma)
			}
		}()
	}
}

// Whole-number fields refuse fractions instead of truncating them (views: 2.5 would make 2).
func TestSpecFractionsAreErrors(t *testing.T) {
	for doc, want := range map[string]string{
		"views: {groups: [{name: a, views: 2.5, size: 9, ops: [{op: random_resized_crop}]}]}\n": "views.groups[0].views: 2.5 is not a whole number",
		"views: {recipe: dino, local_views: 6.5}\n":                                             "views.local_views: 6.5 is not a whole number",
		"views: {recipe: mocov2, size: 224.5}\n":                                                "size: want an integer or [height, width] of integers, got 224.5",
		"views: {recipe: mocov2, size: [160, 128.5]}\n":                                         "got [160, 128.5]",
	} {
		if _, err := decodeSpec(t, doc); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", strings.TrimSpace(doc), err, want)
		}
	}
	s, err := decodeSpec(t, "views: {recipe: mocov2, size: [160.0, 128]}\n")
	if err != nil || *s.Size != (Size{160, 128}) {
		t.Errorf("size [160.0, 128]: %v, %+v", err, s.Size)
	}
}
