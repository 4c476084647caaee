package main

import (
	"fmt"
	"path/filepath"
	"time"

	"pipeline/plots"
)

// minQueueSamples is the shortest timeline worth a queue panel: a moving average over fewer
// samples says no more than the table's mean.
const minQueueSamples = 8

// profilePicture is what `profile --plot` draws, from the report the tables print.
func profilePicture(rep profileReport, interval time.Duration) plots.Profile {
	p := plots.Profile{
		Title:      fmt.Sprintf("pipeline profile %s, %.0f s", filepath.Base(rep.Config), rep.Seconds),
		Bottleneck: rep.Bottleneck, SamplesPerS: rep.SamplesPerS,
		SuggestedPerS: rep.PredictedPerS, SuggestedLimit: rep.PredictedLimit, Cores: rep.Cores,
	}
	if rep.Isolated != "" {
		p.Title = fmt.Sprintf("pipeline profile %s --stage %s, %.0f s", filepath.Base(rep.Config), rep.Isolated, rep.Seconds)
	}
	for i, s := range rep.Stages {
		unit := "samples"
		// A stage that passed far fewer items than the first one counts batches.
		if i > 0 && s.Out < rep.Stages[0].Out/2 {
			unit = "batches"
		}
		p.Stages = append(p.Stages, plots.ProfileStage{Name: s.Name, Workers: s.Workers, Suggested: rep.SuggestedWorkers[s.Name],
			ItemsPerS: s.ItemsPerS, Unit: unit, Busy: s.Busy, Starved: s.Starved, Blocked: s.Blocked})
	}
	for _, o := range rep.Ops {
		p.Ops = append(p.Ops, plots.ProfileOp{Name: o.Name, Share: o.Share})
	}
	if len(rep.Timeline) < minQueueSamples {
		return p
	}
	for i, st := range rep.Timeline[0].Stages {
		if st.QueueCap == 0 {
			continue // no output queue
		}
		var at, filled []float64
		for _, s := range rep.Timeline {
			if i < len(s.Stages) {
				at = append(at, s.At)
				filled = append(filled, s.Stages[i].Queue)
			}
		}
		p.Queues = append(p.Queues, plots.SmoothQueue(st.Name, at, filled, interval.Seconds()))
	}
	return p
}
