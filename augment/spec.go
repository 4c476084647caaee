package augment

import (
	"fmt"
	"math"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"

	"pipeline/pipeline/config"
)

// Spec is the `views:` section of a config. In YAML it is either a recipe name
//
//	views: mocov2
//
// or a mapping that names a recipe and adjusts it
//
//	views: {recipe: dino, size: 224, local_size: 96, local_views: 8, keep_params: true}
//
// or a mapping that spells out every group and op (see GroupSpec and OpSpec)
//
//	views:
//	  groups:
//	    - name: q
//	      size: 224
//	      ops:
//	        - {op: random_resized_crop, scale: [0.2, 1.0], ratio: [0.75, 1.3333333]}
//	        - {op: color_jitter, p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1}
//	        - {op: grayscale, p: 0.2}
//	        - {op: gaussian_blur, p: 0.5, sigma: [0.1, 2.0]}
//	        - {op: hflip, p: 0.5}
type Spec struct {
	Recipe string `yaml:"recipe,omitempty"`
	// Size overrides the output size of a named recipe's views (DINO: the global views).
	Size *Size `yaml:"size,omitempty"`
	// LocalSize and LocalViews adjust DINO's local group (default 96 px, 6 views).
	LocalSize  *Size `yaml:"local_size,omitempty"`
	LocalViews *int  `yaml:"local_views,omitempty"`
	// KeepParams asks the augment stage to record every view's parameters.
	KeepParams bool        `yaml:"keep_params,omitempty"`
	Groups     []GroupSpec `yaml:"groups,omitempty"`
}

// GroupSpec is one group of views that share a size and a list of ops.
type GroupSpec struct {
	Name  string   `yaml:"name"`
	Views int      `yaml:"views,omitempty"` // default 1
	Size  *Size    `yaml:"size"`
	Ops   []OpSpec `yaml:"ops"`
}

// OpSpec is one step of a group. Op is one of random_resized_crop (must come first),
// color_jitter, grayscale, gaussian_blur, hflip, solarize; each reads only its own fields.
type OpSpec struct {
	Op string `yaml:"op"`
	// P is the probability that the op runs (default 1); PViews overrides it per view number
	// (view i uses PViews[i] when present), for asymmetric recipes such as BYOL and DINO.
	P      *float64  `yaml:"p,omitempty"`
	PViews []float64 `yaml:"p_views,omitempty"`
	// random_resized_crop: area fraction and aspect ratio ranges.
	Scale []float64 `yaml:"scale,omitempty"`
	Ratio []float64 `yaml:"ratio,omitempty"`
	// color_jitter: a strength v (brightness, contrast, saturation: factors in
	// [max(0, 1-v), 1+v]; hue: shifts in [-v, v]) or an explicit [lo, hi].
	Brightness *Range `yaml:"brightness,omitempty"`
	Contrast   *Range `yaml:"contrast,omitempty"`
	Saturation *Range `yaml:"saturation,omitempty"`
	Hue        *Range `yaml:"hue,omitempty"`
	// gaussian_blur: sigma range in output pixels (PIL's "radius").
	Sigma []float64 `yaml:"sigma,omitempty"`
}

// setFields lists the YAML keys of the op parameters this step sets (p and p_views aside), so
// that a key the op does not read is refused.
func (os OpSpec) setFields() []string {
	var set []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"scale", os.Scale != nil}, {"ratio", os.Ratio != nil},
		{"brightness", os.Brightness != nil}, {"contrast", os.Contrast != nil},
		{"saturation", os.Saturation != nil}, {"hue", os.Hue != nil},
		{"sigma", os.Sigma != nil},
	} {
		if f.set {
			set = append(set, f.name)
		}
	}
	return set
}

// UnmarshalYAML accepts a scalar recipe name or a mapping; unknown keys are errors.
func (s *Spec) UnmarshalYAML(b []byte) error {
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case string:
		*s = Spec{Recipe: v}
		return nil
	case map[string]any:
		type plain Spec // without this method, so decoding does not recurse
		var p plain
		if err := yaml.UnmarshalWithOptions(b, &p, yaml.DisallowUnknownField()); err != nil {
			return err
		}
		if f, err := parser.ParseBytes(b, 0); err == nil && len(f.Docs) == 1 {
			if err := config.CheckWholeNumbers("", f.Docs[0].Body, &p); err != nil {
				return fmt.Errorf("views.%w", err)
			}
		}
		*s = Spec(p)
		return nil
	default:
		return fmt.Errorf("views: want a recipe name (%s) or a mapping, got %v", recipeList(), v)
	}
}

// Size is an output size: one integer for a square, or [height, width].
type Size struct{ Height, Width int }

// UnmarshalYAML reads 224 or [160, 128].
func (s *Size) UnmarshalYAML(b []byte) error {
	var n float64
	if err := yaml.Unmarshal(b, &n); err == nil {
		if side, ok := wholeInt(n); ok {
			*s = Size{side, side}
			return nil
		}
	}
	var hw []float64
	if err := yaml.Unmarshal(b, &hw); err == nil && len(hw) == 2 {
		h, okH := wholeInt(hw[0])
		w, okW := wholeInt(hw[1])
		if okH && okW {
			*s = Size{h, w}
			return nil
		}
	}
	return fmt.Errorf("size: want an integer or [height, width] of integers, got %s", strings.TrimSpace(string(b)))
}

// wholeInt is f as an int when it has no fraction (YAML would truncate 224.5 to 224).
func wholeInt(f float64) (int, bool) {
	if f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 0, false
	}
	return int(f), true
}

// MarshalYAML writes a square as one integer.
func (s Size) MarshalYAML() (any, error) {
	if s.Height == s.Width {
		return s.Height, nil
	}
	return []int{s.Height, s.Width}, nil
}

// Range is a jitter strength (Scalar) or an explicit [Lo, Hi].
type Range struct {
	Lo, Hi float64
	Scalar bool // Lo holds the strength v
}

// UnmarshalYAML reads 0.4 or [0.6, 1.4].
func (r *Range) UnmarshalYAML(b []byte) error {
	var v float64
	if err := yaml.Unmarshal(b, &v); err == nil {
		*r = Range{Lo: v, Scalar: true}
		return nil
	}
	var lh []float64
	if err := yaml.Unmarshal(b, &lh); err != nil || len(lh) != 2 {
		return fmt.Errorf("want a number or [lo, hi], got %s", b)
	}
	*r = Range{Lo: lh[0], Hi: lh[1]}
	return nil
}

// MarshalYAML writes the form it was read in.
func (r Range) MarshalYAML() (any, error) {
	if r.Scalar {
		return r.Lo, nil
	}
	return []float64{r.Lo, r.Hi}, nil
}
