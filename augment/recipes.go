package augment

import (
	"fmt"
	"sort"
	"strings"
)

// The named recipes. Each is written as the GroupSpecs a user could type, so named and custom
// recipes go through the same checks.
//
// Where a reference uses a TensorFlow op we do not reproduce, the recipe uses the PIL/torchvision
// op of the same role (and these comments and augment/README.md say so):
//   - SimCLR and BYOL blur with a sampled 23-tap Gaussian and zero padding; we use PIL's
//     extended-box GaussianBlur (edge replicate) with the same sigma range.
//   - BYOL's brightness is additive (delta in [-0.4, 0.4]) and its contrast uses per-channel
//     means; we use torchvision's multiplicative brightness and luma-mean contrast.
//   - SimCLR and BYOL resize bicubically (TF), DINO bicubically (PIL); we resize bilinearly.
//   - SimCLR's crop is tf.image.sample_distorted_bounding_box (up to 100 tries); we use
//     RandomResizedCrop with scale (0.08, 1).
var namedRecipes = map[string]func(o namedOptions) []GroupSpec{
	"mocov1": mocoV1,
	"mocov2": mocoV2,
	"simclr": simCLR,
	"byol":   byol,
	"dino":   dino,
}

// namedOptions are the knobs a Spec may turn on a named recipe.
type namedOptions struct {
	size       Size
	localSize  Size
	localViews int
}

func recipeList() string {
	names := make([]string, 0, len(namedRecipes))
	for n := range namedRecipes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Recipes lists the named recipes.
func Recipes() []string { return strings.Split(recipeList(), ", ") }

func f64(v float64) *float64    { return &v }
func strength(v float64) *Range { return &Range{Lo: v, Scalar: true} }

var (
	cropMoCo    = OpSpec{Op: OpCrop, Scale: []float64{0.2, 1}, Ratio: []float64{3.0 / 4, 4.0 / 3}}
	cropDefault = OpSpec{Op: OpCrop, Scale: []float64{0.08, 1}, Ratio: []float64{3.0 / 4, 4.0 / 3}}
	flip        = OpSpec{Op: OpFlip, P: f64(0.5)}
	gray        = OpSpec{Op: OpGrayscale, P: f64(0.2)}
	blurSigma   = []float64{0.1, 2.0}
)

func jitterOp(p, b, c, s, h float64) OpSpec {
	return OpSpec{Op: OpJitter, P: f64(p), Brightness: strength(b), Contrast: strength(c),
		Saturation: strength(s), Hue: strength(h)}
}

// mocoV1 is main_moco.py without --aug-plus: grayscale before an always-on, stronger-hue jitter.
func mocoV1(o namedOptions) []GroupSpec {
	ops := []OpSpec{cropMoCo, gray, jitterOp(1, 0.4, 0.4, 0.4, 0.4), flip}
	return []GroupSpec{{Name: "q", Size: &o.size, Ops: ops}, {Name: "k", Size: &o.size, Ops: ops}}
}

// mocoV2 is main_moco.py --aug-plus (moco-v2-reference.md 1.1).
func mocoV2(o namedOptions) []GroupSpec {
	ops := []OpSpec{cropMoCo, jitterOp(0.8, 0.4, 0.4, 0.4, 0.1), gray,
		{Op: OpBlur, P: f64(0.5), Sigma: blurSigma}, flip}
	return []GroupSpec{{Name: "q", Size: &o.size, Ops: ops}, {Name: "k", Size: &o.size, Ops: ops}}
}

// simCLR is SimCLR's ImageNet recipe with colour strength 1 (jitter 0.8, 0.8, 0.8, 0.2), two
// symmetric views in one group.
func simCLR(o namedOptions) []GroupSpec {
	ops := []OpSpec{cropDefault, flip, jitterOp(0.8, 0.8, 0.8, 0.8, 0.2), gray,
		{Op: OpBlur, P: f64(0.5), Sigma: blurSigma}}
	return []GroupSpec{{Name: "views", Views: 2, Size: &o.size, Ops: ops}}
}

// byol is BYOL's asymmetric pair in one group: view 0 always blurred and never solarized,
// view 1 blurred with p 0.1 and solarized with p 0.2.
func byol(o namedOptions) []GroupSpec {
	ops := []OpSpec{cropDefault, flip, jitterOp(0.8, 0.4, 0.4, 0.2, 0.1), gray,
		{Op: OpBlur, PViews: []float64{1.0, 0.1}, Sigma: blurSigma},
		{Op: OpSolarize, PViews: []float64{0, 0.2}}}
	return []GroupSpec{{Name: "views", Views: 2, Size: &o.size, Ops: ops}}
}

// dino is DINO's multi-crop: two global views (the first always blurred, the second blurred
// with p 0.1 and solarized with p 0.2) and N local views.
func dino(o namedOptions) []GroupSpec {
	common := []OpSpec{flip, jitterOp(0.8, 0.4, 0.4, 0.2, 0.1), gray}
	global := append([]OpSpec{{Op: OpCrop, Scale: []float64{0.4, 1}, Ratio: []float64{3.0 / 4, 4.0 / 3}}}, common...)
	global = append(global, OpSpec{Op: OpBlur, PViews: []float64{1.0, 0.1}, Sigma: blurSigma},
		OpSpec{Op: OpSolarize, PViews: []float64{0, 0.2}})
	local := append([]OpSpec{{Op: OpCrop, Scale: []float64{0.05, 0.4}, Ratio: []float64{3.0 / 4, 4.0 / 3}}}, common...)
	local = append(local, OpSpec{Op: OpBlur, P: f64(0.5), Sigma: blurSigma})
	return []GroupSpec{
		{Name: "global", Views: 2, Size: &o.size, Ops: global},
		{Name: "local", Views: o.localViews, Size: &o.localSize, Ops: local},
	}
}

// groupsOf resolves a Spec to its groups: a named recipe with its options, or the custom list.
func groupsOf(s Spec) (name string, groups []GroupSpec, err error) {
	switch {
	case s.Recipe != "" && len(s.Groups) > 0:
		return "", nil, fmt.Errorf("recipe and groups: give a recipe name or a list of groups, not both")
	case s.Recipe == "" && len(s.Groups) == 0:
		return "", nil, fmt.Errorf("recipe: missing; name one of %s or give groups", recipeList())
	case s.Recipe == "":
		for _, f := range []struct {
			name string
			set  bool
		}{{"size", s.Size != nil}, {"local_size", s.LocalSize != nil}, {"local_views", s.LocalViews != nil}} {
			if f.set {
				return "", nil, fmt.Errorf("%s: only adjusts a named recipe; with groups, set it per group", f.name)
			}
		}
		return "custom", s.Groups, nil
	}
	mk, ok := namedRecipes[s.Recipe]
	if !ok {
		return "", nil, fmt.Errorf("recipe: unknown recipe %q; known: %s", s.Recipe, recipeList())
	}
	o := namedOptions{size: Size{224, 224}, localSize: Size{96, 96}, localViews: 6}
	if s.Size != nil {
		o.size = *s.Size
	}
	if s.Recipe != "dino" {
		if s.LocalSize != nil {
			return "", nil, fmt.Errorf("local_size: only the dino recipe has local views")
		}
		if s.LocalViews != nil {
			return "", nil, fmt.Errorf("local_views: only the dino recipe has local views")
		}
	}
	if s.LocalSize != nil {
		o.localSize = *s.LocalSize
	}
	if s.LocalViews != nil {
		if *s.LocalViews < 1 {
			return "", nil, fmt.Errorf("local_views: %d, want at least 1", *s.LocalViews)
		}
		o.localViews = *s.LocalViews
	}
	return s.Recipe, mk(o), nil
}
