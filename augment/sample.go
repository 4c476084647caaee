package augment

import "pipeline/pipeline"

// viewRecord is the storage one view's params point into, so that sampling allocates nothing.
type viewRecord struct {
	params pipeline.ViewParams
	jitter pipeline.Jitter
	order  [4]string
	sigma  float64
}

// clone copies the params out of the record, for keeping.
func (rec *viewRecord) clone() pipeline.ViewParams {
	p := rec.params
	if p.Jitter != nil {
		j := *p.Jitter
		j.Order = append([]string(nil), j.Order...)
		p.Jitter = &j
	}
	if p.BlurSigma != nil {
		s := *p.BlurSigma
		p.BlurSigma = &s
	}
	return p
}

// sampleView draws every random choice of view number v of group g, on a w x h image, into
// rec.params.
func (g *group) sampleView(r *viewRNG, v, w, h int, rec *viewRecord) {
	p := &rec.params
	*p = pipeline.ViewParams{Size: [2]int{g.height, g.width}}
	for i := range g.steps {
		st := &g.steps[i]
		st.sampler.sample(r, st.prob(v), w, h, rec)
	}
}
