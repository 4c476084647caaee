package job

import (
	"encoding/json"
	"os"
	"time"

	"pipeline/pipeline"
)

// Summary is what a run reports at its end, for people and (as JSON) for programs.
// Nothing is silently lost: Read == Emitted + Skipped.Total.
type Summary struct {
	Read         int64               `json:"read"`
	Emitted      int64               `json:"emitted"`
	Skipped      pipeline.SkipReport `json:"skipped"`
	Batches      int64               `json:"batches"`
	Seconds      float64             `json:"seconds"`
	SamplesPerS  float64             `json:"samples_per_s"`
	Stopped      string              `json:"stopped,omitempty"` // why the run ended early: "signal", "limit"
	Epochs       int                 `json:"epochs"`
	Position     any                 `json:"position,omitempty"` // where a resumed run would start
	MemoryBudget int64               `json:"memory_budget"`
	MemoryPeak   int64               `json:"memory_peak"`
	Stages       []StageReport       `json:"stages"`
	Sink         map[string]any      `json:"sink"`
	Decoder      string              `json:"decoder"`
}

// StageReport is one stage's totals over the run.
type StageReport struct {
	Name       string  `json:"name"`
	Workers    int     `json:"workers"`
	In         int64   `json:"in"`
	Out        int64   `json:"out"`
	Skipped    int64   `json:"skipped"`
	ItemsPerS  float64 `json:"items_per_s"`
	Busy       float64 `json:"busy"`    // fraction of worker time spent working
	Starved    float64 `json:"starved"` // fraction waiting for input
	Blocked    float64 `json:"blocked"` // fraction waiting on the next stage
	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyP99 float64 `json:"latency_p99_ms"`
}

// addStages reports every stage of r over elapsed, takes Read from the first stage's output
// and the rate from Emitted.
func (s *Summary) addStages(r *pipeline.Run, elapsed time.Duration) {
	for i, st := range r.Stages() {
		snap := st.Snapshot()
		if i == 0 {
			s.Read = snap.Out
		}
		s.Stages = append(s.Stages, Report(snap, elapsed))
	}
	if elapsed > 0 {
		s.SamplesPerS = float64(s.Emitted) / elapsed.Seconds()
	}
}

// Report turns a stage's counters over an elapsed time into fractions.
func Report(s pipeline.Snapshot, elapsed time.Duration) StageReport {
	r := StageReport{Name: s.Name, Workers: s.Workers, In: s.In, Out: s.Out, Skipped: s.Skipped,
		LatencyP50: ms(s.LatencyP50), LatencyP99: ms(s.LatencyP99)}
	if elapsed > 0 {
		r.ItemsPerS = float64(s.Out) / elapsed.Seconds()
		total := float64(elapsed) * float64(max(s.Workers, 1))
		r.Busy = float64(s.Busy) / total
		r.Starved = float64(s.Starved) / total
		r.Blocked = float64(s.Blocked) / total
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteJSON writes the summary to path, indented. The sink's fields are also copied to the top
// level where they do not clash with the summary's own (so `knn_accuracy` is there for a
// trainer), besides the `sink` object.
func (s *Summary) WriteJSON(path string) error {
	own, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var flat map[string]any
	if err := json.Unmarshal(own, &flat); err != nil {
		return err
	}
	for k, v := range s.Sink {
		if _, clash := flat[k]; !clash {
			flat[k] = v
		}
	}
	b, err := json.MarshalIndent(flat, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// OpReport is the cost of one augmentation op over a run.
type OpReport struct {
	Name      string  `json:"name"`
	Calls     int64   `json:"calls"`
	CallsPerS float64 `json:"calls_per_s"`
	MsPerCall float64 `json:"ms_per_call"`
	Share     float64 `json:"share"` // of all augmentation op time
}

// OpReports reads the recipe's per-op counters, accumulated since the job was built.
func (j *Job) OpReports(seconds float64) []OpReport {
	stats := j.Recipe.OpStats()
	var total time.Duration
	for _, s := range stats {
		total += s.Total
	}
	var out []OpReport
	for _, s := range stats {
		if s.Count == 0 {
			continue
		}
		r := OpReport{Name: s.Name, Calls: s.Count, MsPerCall: ms(s.Mean())}
		if seconds > 0 {
			r.CallsPerS = float64(s.Count) / seconds
		}
		if total > 0 {
			r.Share = float64(s.Total) / float64(total)
		}
		out = append(out, r)
	}
	return out
}
