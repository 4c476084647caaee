package augment

import (
	"math"
	"strings"
	"testing"

	"pipeline/pipeline"
)

// draws samples n views of group gi (view number v) of a recipe on a w x h image.
func draws(t *testing.T, r *Recipe, gi, v, n, w, h int) []pipeline.ViewParams {
	t.Helper()
	g := &r.groups[gi]
	out := make([]pipeline.ViewParams, n)
	var rec viewRecord
	for i := range n {
		rng := newViewRNG(42, 0, int64(i), g.key, v)
		g.sampleView(&rng, v, w, h, &rec)
		out[i] = rec.clone()
	}
	return out
}

// within checks a rate against p with a 5-sigma binomial bound.
func within(t *testing.T, what string, hits, n int, p float64) {
	t.Helper()
	rate := float64(hits) / float64(n)
	tol := 5 * math.Sqrt(p*(1-p)/float64(n))
	if math.Abs(rate-p) > tol+1e-12 {
		t.Errorf("%s: rate %.4f over %d draws, want %.3f +- %.4f", what, rate, n, p, tol)
	}
}

func mustBuild(t testing.TB, s Spec) *Recipe {
	t.Helper()
	r, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMoCoV2ApplyRatesAndRanges(t *testing.T) {
	const n = 20000
	r := mustBuild(t, Spec{Recipe: "mocov2"})
	ps := draws(t, r, 0, 0, n, 500, 375)
	var jit, gray, blur, flip int
	orders := map[string]int{}
	lo := map[string]float64{"b": 9, "c": 9, "s": 9, "h": 9}
	hi := map[string]float64{"b": -9, "c": -9, "s": -9, "h": -9}
	var sumB, sumH, sumSigma float64
	for _, p := range ps {
		if p.Size != [2]int{224, 224} {
			t.Fatalf("size %v", p.Size)
		}
		if p.Jitter != nil {
			jit++
			j := p.Jitter
			orders[strings.Join(j.Order, ",")]++
			for k, v := range map[string]float64{"b": j.Brightness, "c": j.Contrast, "s": j.Saturation, "h": j.Hue} {
				lo[k], hi[k] = min(lo[k], v), max(hi[k], v)
			}
			sumB += j.Brightness
			sumH += j.Hue
		}
		if p.Grayscale {
			gray++
		}
		if p.BlurSigma != nil {
			blur++
			s := *p.BlurSigma
			if s < 0.1 || s > 2 {
				t.Fatalf("sigma %v outside [0.1, 2]", s)
			}
			sumSigma += s
		}
		if p.Flip {
			flip++
		}
		if p.Solarize {
			t.Fatal("mocov2 solarized a view")
		}
	}
	within(t, "jitter", jit, n, 0.8)
	within(t, "grayscale", gray, n, 0.2)
	within(t, "blur", blur, n, 0.5)
	within(t, "flip", flip, n, 0.5)
	for k, want := range map[string][2]float64{"b": {0.6, 1.4}, "c": {0.6, 1.4}, "s": {0.6, 1.4}, "h": {-0.1, 0.1}} {
		// Over ~16000 uniform draws the extremes come within 0.002 of the ends.
		if lo[k] < want[0] || hi[k] > want[1] || lo[k] > want[0]+0.002 || hi[k] < want[1]-0.002 {
			t.Errorf("factor %s spans [%v, %v], want [%v, %v]", k, lo[k], hi[k], want[0], want[1])
		}
	}
	// Means of U[0.6, 1.4] and U[-0.1, 0.1]: sd 0.23 and 0.058, 5-sigma bounds over 16000.
	if m := sumB / float64(jit); math.Abs(m-1) > 5*0.231/math.Sqrt(float64(jit)) {
		t.Errorf("mean brightness %v", m)
	}
	if m := sumH / float64(jit); math.Abs(m) > 5*0.0578/math.Sqrt(float64(jit)) {
		t.Errorf("mean hue %v", m)
	}
	if m := sumSigma / float64(blur); math.Abs(m-1.05) > 5*0.548/math.Sqrt(float64(blur)) {
		t.Errorf("mean sigma %v", m)
	}
	// All 24 orders, about equally: chi-square with 23 degrees of freedom (p = 0.001 at 49.7).
	if len(orders) != 24 {
		t.Fatalf("%d distinct jitter orders, want 24", len(orders))
	}
	exp := float64(jit) / 24
	chi := 0.0
	for o, c := range orders {
		if len(strings.Split(o, ",")) != 4 {
			t.Fatalf("order %q", o)
		}
		chi += (float64(c) - exp) * (float64(c) - exp) / exp
	}
	if chi > 49.7 {
		t.Errorf("jitter orders are not uniform: chi-square %.1f over 24 orders %v", chi, orders)
	}
}

func TestCropSampler(t *testing.T) {
	// On a large square image with scale (0.2, 0.5) no attempt is ever rejected, so the area
	// fraction is U[0.2, 0.5] and the log aspect ratio U[ln 3/4, ln 4/3], up to rounding.
	const n = 20000
	r := mustBuild(t, Spec{Groups: []GroupSpec{{Name: "g", Size: &Size{32, 32},
		Ops: []OpSpec{{Op: OpCrop, Scale: []float64{0.2, 0.5}}}}}})
	var area, logAspect, logAspect2, top []float64
	for _, p := range draws(t, r, 0, 0, n, 2000, 2000) {
		c := p.Crop
		if c.Top < 0 || c.Left < 0 || c.Top+c.Height > 2000 || c.Left+c.Width > 2000 {
			t.Fatalf("crop %+v outside the image", c)
		}
		a := float64(c.Width*c.Height) / 4e6
		la := math.Log(float64(c.Width) / float64(c.Height))
		if a < 0.199 || a > 0.501 || la < math.Log(0.75)-0.002 || la > math.Log(4.0/3)+0.002 {
			t.Fatalf("crop %+v: area fraction %v, log aspect %v", c, a, la)
		}
		area = append(area, a)
		logAspect = append(logAspect, la)
		logAspect2 = append(logAspect2, la*la)
		top = append(top, float64(c.Top)/float64(2000-c.Height))
	}
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	sd := func(width float64) float64 { return width / math.Sqrt(12) / math.Sqrt(n) }
	if m := mean(area); math.Abs(m-0.35) > 5*sd(0.3) {
		t.Errorf("mean area fraction %v, want 0.35", m)
	}
	w := math.Log(4.0/3) - math.Log(0.75)
	if m := mean(logAspect); math.Abs(m) > 5*sd(w) {
		t.Errorf("mean log aspect %v, want 0", m)
	}
	// A uniform log aspect has variance w^2/12; a uniform aspect would not.
	if v := mean(logAspect2); math.Abs(v-w*w/12) > 0.05*w*w/12 {
		t.Errorf("log aspect variance %v, want %v", v, w*w/12)
	}
	if m := mean(top); math.Abs(m-0.5) > 5*sd(1) {
		t.Errorf("mean relative top %v, want 0.5", m)
	}
}

func TestCropFallbackIsCentral(t *testing.T) {
	var rng viewRNG
	ratio := [2]float64{3.0 / 4, 4.0 / 3}
	// 1x100: every attempt is too wide; the aspect clamps to 3/4: w = 1, h = round(1/0.75) = 1.
	if c := sampleCrop(&rng, 1, 100, [2]float64{0.2, 1}, ratio); c != (pipeline.Crop{Top: 49, Left: 0, Height: 1, Width: 1}) {
		t.Errorf("tall fallback %+v", c)
	}
	if c := sampleCrop(&rng, 100, 1, [2]float64{0.2, 1}, ratio); c != (pipeline.Crop{Top: 0, Left: 49, Height: 1, Width: 1}) {
		t.Errorf("wide fallback %+v", c)
	}
	// A ratio range far from square would round a thin image's side to 0: it keeps 1 pixel.
	if c := sampleCrop(&rng, 1, 50, [2]float64{0.2, 1}, [2]float64{2, 3}); c != (pipeline.Crop{Top: 24, Left: 0, Height: 1, Width: 1}) {
		t.Errorf("1x50 with ratio [2, 3]: fallback %+v", c)
	}
	if c := sampleCrop(&rng, 50, 1, [2]float64{0.2, 1}, [2]float64{0.2, 0.3}); c != (pipeline.Crop{Top: 0, Left: 24, Height: 1, Width: 1}) {
		t.Errorf("50x1 with ratio [0.2, 0.3]: fallback %+v", c)
	}
	// A crop larger than any image (scale > 1) falls back to the whole image within range.
	// 300/200 > 4/3: h = 200, w = round(200*4/3) = 267, left = (300-267) div 2 = 16.
	if c := sampleCrop(&rng, 300, 200, [2]float64{5, 6}, ratio); c != (pipeline.Crop{Top: 0, Left: 16, Height: 200, Width: 267}) {
		t.Errorf("oversized fallback %+v", c)
	}
}

func TestAsymmetricRecipes(t *testing.T) {
	const n = 10000
	for _, name := range []string{"byol", "dino"} {
		r := mustBuild(t, Spec{Recipe: name})
		for v, want := range [][2]float64{{1, 0}, {0.1, 0.2}} {
			var blur, sol int
			for _, p := range draws(t, r, 0, v, n, 400, 350) {
				if p.BlurSigma != nil {
					blur++
				}
				if p.Solarize {
					sol++
				}
			}
			within(t, name+" blur", blur, n, want[0])
			within(t, name+" solarize", sol, n, want[1])
		}
	}
	// DINO local views: 96 px, area fraction at most 0.4 (plus rounding), blur p 0.5.
	r := mustBuild(t, Spec{Recipe: "dino"})
	var blur int
	for _, p := range draws(t, r, 1, 3, n, 500, 400) {
		if a := float64(p.Crop.Width*p.Crop.Height) / 2e5; a < 0.049 || a > 0.405 || p.Size != [2]int{96, 96} {
			t.Fatalf("local crop %+v size %v", p.Crop, p.Size)
		}
		if p.BlurSigma != nil {
			blur++
		}
	}
	within(t, "dino local blur", blur, n, 0.5)
}
