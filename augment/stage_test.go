package augment

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"pipeline/augment/internal/imageio"
	"pipeline/pipeline"
)

func photo(t testing.TB) pipeline.Image {
	t.Helper()
	im, err := imageio.Load(filepath.Join(parityDir(t), "case0021.in.png"))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func paramsJSON(t *testing.T, p pipeline.ViewParams) string {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestViewsAreDeterministic(t *testing.T) {
	src := photo(t)
	r := mustBuild(t, Spec{Recipe: "mocov2"})
	m := pipeline.Meta{Index: 17, Epoch: 3}
	a, err := r.Views(7, m, src, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Views(7, m, src, true)
	if err != nil {
		t.Fatal(err)
	}
	sampled := r.SampleParams(7, 3, 17, src.Width, src.Height)
	for gi := range a {
		pa, pb := paramsJSON(t, a[gi].Params[0]), paramsJSON(t, b[gi].Params[0])
		if pa != pb || string(a[gi].Views[0].Pix) != string(b[gi].Views[0].Pix) {
			t.Errorf("group %s: two runs differ", a[gi].Name)
		}
		if ps := paramsJSON(t, sampled[gi][0]); ps != pa {
			t.Errorf("group %s: SampleParams %s, Views recorded %s", a[gi].Name, ps, pa)
		}
		// The recorded params replay to the same pixels.
		got, err := r.ReplayGroup(src, a[gi].Name, a[gi].Params[0])
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Pix) != string(a[gi].Views[0].Pix) {
			t.Errorf("group %s: replaying the recorded params gives other pixels", a[gi].Name)
		}
	}
	if paramsJSON(t, a[0].Params[0]) == paramsJSON(t, a[1].Params[0]) {
		t.Error("q and k have the same params")
	}
	// Every input of the seed matters.
	for _, c := range []struct {
		seed  uint64
		epoch int
		index int64
	}{{8, 3, 17}, {7, 4, 17}, {7, 3, 18}} {
		other := r.SampleParams(c.seed, c.epoch, c.index, src.Width, src.Height)
		if paramsJSON(t, other[0][0]) == paramsJSON(t, a[0].Params[0]) {
			t.Errorf("seed %d epoch %d index %d gives the same q params as 7/3/17", c.seed, c.epoch, c.index)
		}
	}
	// Views within one group differ too (DINO's locals).
	d := mustBuild(t, Spec{Recipe: "dino"}).SampleParams(7, 0, 1, src.Width, src.Height)
	seen := map[string]bool{}
	for _, p := range d[1] {
		seen[paramsJSON(t, p)] = true
	}
	if len(seen) != 6 {
		t.Errorf("dino's 6 local views have %d distinct params", len(seen))
	}
}

func TestMoCoV1OrderDiffersFromReplay(t *testing.T) {
	// MoCo v1 turns grey before its jitter: the recipe's order must be used to replay it.
	src := photo(t)
	r := mustBuild(t, Spec{Recipe: "mocov1"})
	for i := int64(0); i < 200; i++ {
		ps := r.SampleParams(1, 0, i, src.Width, src.Height)[0][0]
		if !ps.Grayscale || ps.Jitter == nil || ps.Jitter.Saturation < 1.1 {
			continue
		}
		v1, err := r.ReplayGroup(src, "q", ps)
		if err != nil {
			t.Fatal(err)
		}
		v2, err := Replay(src, ps)
		if err != nil {
			t.Fatal(err)
		}
		if string(v1.Pix) == string(v2.Pix) {
			t.Error("grey-then-jitter and jitter-then-grey gave the same pixels")
		}
		return
	}
	t.Fatal("no mocov1 draw with grayscale and strong saturation in 200 samples")
}

func TestStageFillsGroupsFromBudget(t *testing.T) {
	src := photo(t)
	r := mustBuild(t, Spec{Recipe: "dino", LocalViews: ptr(2)})
	budget := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 1 << 20, Decoded: 1 << 22, Views: 1 << 24, Batches: 1 << 20})
	stage := r.Stage(5, true, budget.Views)
	// A budget mistake in this test must fail it, not hang it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const workers, items = 4, 12
	results := make([]*pipeline.Item, items)
	var wg sync.WaitGroup
	errs := make(chan error, items)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < items; i += workers {
				it := &pipeline.Item{Meta: pipeline.Meta{Index: int64(i), Epoch: 1}, Image: src}
				if err := stage(ctx, it); err != nil {
					errs <- err
					return
				}
				results[i] = it
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantBytes := int64(0)
	for i, it := range results {
		if it.Image.Pix != nil {
			t.Errorf("item %d still holds its decoded image", i)
		}
		if len(it.Groups) != 2 || it.Groups[0].Name != "global" || len(it.Groups[1].Views) != 2 {
			t.Fatalf("item %d groups %+v", i, it.Groups)
		}
		want, err := r.Views(5, it.Meta, src, true)
		if err != nil {
			t.Fatal(err)
		}
		for gi, g := range it.Groups {
			for v, view := range g.Views {
				if string(view.Pix) != string(want[gi].Views[v].Pix) {
					t.Errorf("item %d group %s view %d differs from a sequential run", i, g.Name, v)
				}
				if paramsJSON(t, g.Params[v]) != paramsJSON(t, want[gi].Params[v]) {
					t.Errorf("item %d group %s view %d: params differ", i, g.Name, v)
				}
			}
		}
		wantBytes += r.ViewBytes()
	}
	if budget.Views.InUse() < wantBytes {
		t.Errorf("views account holds %d bytes, want at least %d", budget.Views.InUse(), wantBytes)
	}
	for _, it := range results {
		it.Release()
	}
	if n := budget.Views.InUse(); n != 0 {
		t.Errorf("%d bytes still charged after release", n)
	}
}

// The job sizes the views account as SampleCharge x the window, so SampleCharge must be what
// the stage really charges for a sample, or the reorder buffer could wait for ever; DINO's
// groups of several views are the case where charging per view and per group differ.
func TestSampleChargeIsWhatTheStageCharges(t *testing.T) {
	for _, spec := range []Spec{{Recipe: "mocov2", Size: &Size{64, 64}}, {Recipe: "dino", LocalSize: &Size{60, 60}, LocalViews: ptr(10)}} {
		r := mustBuild(t, spec)
		acct := pipeline.NewBudget(pipeline.BudgetSplit{Views: 1 << 30}).Views
		it := &pipeline.Item{Image: pipeline.Image{Width: 300, Height: 200, Pix: make([]byte, 300*200*3)}}
		if err := r.Stage(1, false, acct)(context.Background(), it); err != nil {
			t.Fatal(err)
		}
		if acct.InUse() != r.SampleCharge() {
			t.Fatalf("%s: the stage charged %d bytes for a sample, SampleCharge says %d", spec.Recipe, acct.InUse(), r.SampleCharge())
		}
		it.Release()
	}
}

func TestStageRejectsMissingImage(t *testing.T) {
	r := mustBuild(t, Spec{Recipe: "mocov2"})
	budget := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 1, Decoded: 1, Views: 1 << 22, Batches: 1})
	it := &pipeline.Item{Meta: pipeline.Meta{Key: "x", Shard: "s.tar"}}
	err := r.Stage(1, false, budget.Views)(context.Background(), it)
	if se, ok := pipeline.AsSampleError(err); !ok || se.Reason != pipeline.ReasonCorrupt {
		t.Errorf("error %v, want a corrupt_image sample error", err)
	}
	// A views account smaller than one view stops the run instead of waiting forever.
	small := pipeline.NewBudget(pipeline.BudgetSplit{Encoded: 1, Decoded: 1, Views: 1000, Batches: 1})
	it = &pipeline.Item{Image: photo(t)}
	err = r.Stage(1, false, small.Views)(context.Background(), it)
	if _, ok := err.(interface{ Unwrap() error }); !ok || err == nil {
		t.Fatalf("error %v, want a wrapped over-budget error", err)
	}
	if _, isSample := pipeline.AsSampleError(err); isSample {
		t.Errorf("over-budget reported as a bad sample: %v", err)
	}
}

func TestOpStatsCount(t *testing.T) {
	r := mustBuild(t, Spec{Recipe: "mocov2"})
	src := photo(t)
	var crops int64
	for i := range 10 {
		if _, err := r.Views(1, pipeline.Meta{Index: int64(i)}, src, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range r.OpStats() {
		if s.Name == OpCrop {
			crops = s.Count
			if s.Total <= 0 || s.Mean() <= 0 {
				t.Errorf("crop time %v", s.Total)
			}
		}
	}
	if crops != 20 {
		t.Errorf("crop ran %d times for 10 twin views", crops)
	}
}

func ptr[T any](v T) *T { return &v }
