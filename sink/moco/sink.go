package moco

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"pipeline/sink"
	"pipeline/sink/moco/device"
)

var _ sink.Sink = (*Sink)(nil)

// Options are the parts of a run that are not in the YAML config.
type Options struct {
	// KNN, if set, is evaluated at start (knn_accuracy_at_init) and after every epoch.
	KNN *KNNSplits
	// Log receives one line every cfg.LogEvery steps and one per kNN evaluation; nil: none.
	Log io.Writer
	// Backend overrides cfg.Backend/cfg.Plugin (tests share one).
	Backend backends.Backend
}

// deviceBatch is a batch whose views are already on the device.
type deviceBatch struct {
	q, k          *tensors.Tensor
	epoch         int
	rows          int
	pipelineState []byte
}

// Sink trains MoCo on the batches written to it. Write uploads a batch's views to the device
// straight from the Arrow buffers and hands them to the training goroutine through a queue of
// one, so the next batch's transfer overlaps the current step (double buffering).
type Sink struct {
	cfg     Config
	opts    Options
	trainer *Trainer
	resumed []byte

	batches   chan deviceBatch
	done      chan struct{} // closed when the training goroutine has stopped
	closeOnce sync.Once
	err       error // the training goroutine's error; read after done

	mu            sync.Mutex
	pipelineState []byte
	batchRows     int // fixed by the first batch; one of another size (the last) is dropped
	stats         runStats
}

type runStats struct {
	steps                  int64
	lastLoss, lastAccuracy float32
	lastLR                 float64
	waitNs, stepNs         int64 // after the first step (which compiles)
	timedSteps             int64 // the steps waitNs and stepNs cover (not those before a resume)
	firstStepNs            int64
	droppedRows            int64
	knn                    []float64 // after each epoch
	knnInit                *float64
	knnPixels              *float64
	lastCheckpoint         string
	report                 reportStats // the training report's series and the progress line's figures
}

// New opens the backend, builds the trainer and resumes from the newest checkpoint in
// cfg.CheckpointDir if there is one (PipelineState then returns the data position to resume).
func New(cfg Config, opts Options) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("moco sink: %w", err)
	}
	backend := opts.Backend
	if backend == nil {
		choice, err := device.Resolve(cfg.Backend, cfg.Plugin)
		if err != nil {
			return nil, fmt.Errorf("moco sink: %w", err)
		}
		if backend, err = choice.Open(); err != nil {
			return nil, fmt.Errorf("moco sink: %w", err)
		}
	}
	trainer, err := NewTrainer(cfg, backend)
	if err != nil {
		return nil, fmt.Errorf("moco sink: %w", err)
	}
	s := &Sink{cfg: cfg, opts: opts, trainer: trainer, batches: make(chan deviceBatch, 1), done: make(chan struct{})}
	if err := s.openReport(); err != nil {
		return nil, fmt.Errorf("moco sink: %w", err)
	}
	if cfg.CheckpointDir != "" {
		path, err := LatestCheckpoint(cfg.CheckpointDir)
		if err != nil {
			return nil, fmt.Errorf("moco sink: %w", err)
		}
		if path != "" {
			if s.resumed, err = trainer.Load(path); err != nil {
				return nil, fmt.Errorf("moco sink: resuming: %w", err)
			}
			s.stats.steps = trainer.Step()
			s.stats.report.resumed(trainer.Step(), trainer.Epoch())
			s.batchRows = trainer.batch
			s.logf("resumed from %s at step %d, epoch %d", path, trainer.Step(), trainer.Epoch())
		}
	}
	go s.train()
	return s, nil
}

// Trainer is the trainer the sink drives (for evaluation after Close).
func (s *Sink) Trainer() *Trainer { return s.trainer }

// PipelineState is the data position stored with the checkpoint the sink resumed from, nil on
// a fresh start: the runtime seeks its source there so that training sees the same samples.
func (s *Sink) PipelineState() []byte { return s.resumed }

// SetPipelineState gives the data position reached once the next batch passed to Write has
// been consumed; it is stored with the checkpoints taken after that batch's step.
func (s *Sink) SetPipelineState(state []byte) {
	s.mu.Lock()
	s.pipelineState = append([]byte(nil), state...)
	s.mu.Unlock()
}

// Write uploads the q and k views of rec to the device and queues them for training. A batch
// whose size differs from the first one (a short last batch) is dropped, as with drop_last; a
// batch after that one is an error.
func (s *Sink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	defer rec.Release()
	select {
	case <-s.done:
		return s.stoppedErr()
	default:
	}
	b, err := s.upload(rec)
	if err != nil || b == nil {
		return err
	}
	select {
	case s.batches <- *b:
		return nil
	case <-s.done:
		b.release()
		return s.stoppedErr()
	case <-ctx.Done():
		b.release()
		return ctx.Err()
	}
}

func (s *Sink) stoppedErr() error {
	if s.err != nil {
		return s.err
	}
	return errors.New("moco sink: closed")
}

func (s *Sink) upload(rec arrow.RecordBatch) (*deviceBatch, error) {
	q, err := readViews(rec, groupQuery)
	if err != nil {
		return nil, fmt.Errorf("moco sink: %w", err)
	}
	k, err := readViews(rec, groupKey)
	if err != nil {
		return nil, fmt.Errorf("moco sink: %w", err)
	}
	if q.n != k.n || q.h != k.h || q.w != k.w {
		return nil, fmt.Errorf("moco sink: q views are %dx%dx%d, k views %dx%dx%d", q.n, q.h, q.w, k.n, k.h, k.w)
	}
	epoch, err := readEpoch(rec)
	if err != nil {
		return nil, fmt.Errorf("moco sink: %w", err)
	}
	s.mu.Lock()
	state := s.pipelineState
	if s.batchRows == 0 {
		s.batchRows = q.n
	}
	// Only one batch is ever dropped, so droppedRows is its size.
	if dropped, rows := s.stats.droppedRows, s.batchRows; dropped > 0 {
		s.mu.Unlock()
		return nil, fmt.Errorf("moco sink: a batch of %d rows after one of %d rows: training uses batches of %d "+
			"(fixed by the first batch or the checkpoint resumed from); only a short last batch is dropped", q.n, dropped, rows)
	}
	drop := q.n != s.batchRows
	if drop {
		s.stats.droppedRows = int64(q.n)
	}
	s.mu.Unlock()
	if drop {
		return nil, nil
	}
	b := &deviceBatch{epoch: epoch, rows: q.n, pipelineState: state}
	if b.q, err = s.toDevice(q); err != nil {
		return nil, err
	}
	if b.k, err = s.toDevice(k); err != nil {
		b.q.FinalizeAll()
		return nil, err
	}
	return b, nil
}

// toDevice copies one view column from the Arrow buffer to the device (host to device, no
// intermediate copy on the host).
func (s *Sink) toDevice(v viewColumn) (*tensors.Tensor, error) {
	backend := s.trainer.Backend()
	buf, err := backend.BufferFromFlatData(0, v.pix, shapes.Make(dtypes.Uint8, v.n, v.h, v.w, 3))
	if err != nil {
		return nil, fmt.Errorf("moco sink: uploading views: %w", err)
	}
	t, err := tensors.FromBuffer(backend, buf)
	if err != nil {
		return nil, fmt.Errorf("moco sink: uploading views: %w", err)
	}
	return t, nil
}

func (b *deviceBatch) release() {
	b.q.FinalizeAll()
	b.k.FinalizeAll()
}

// train is the goroutine that owns the trainer: it runs one step per queued batch until the
// queue is closed or a step fails.
func (s *Sink) train() {
	defer close(s.done)
	if err := s.evaluate(true); err != nil {
		s.err = err
		return
	}
	epoch := s.trainer.Epoch()
	state := s.resumed // a resumed run that trains no step re-saves the position it resumed from
	compiled := false
	for {
		t0 := time.Now()
		b, ok := <-s.batches
		wait := time.Since(t0)
		if !ok {
			break
		}
		if b.epoch != epoch {
			s.epochEnded() // report: the steps an epoch takes, for the time left
		}
		if b.epoch != epoch && s.trainer.KNNDue() {
			if err := s.evaluate(false); err != nil {
				b.release()
				s.err = err
				return
			}
		}
		if b.epoch != epoch {
			s.redrawReport() // after every epoch: a long run shows its curves while it trains
		}
		epoch = b.epoch
		if !compiled {
			s.logf("compiling the training step for batches of %d (the first step; on XLA this can take minutes)", b.rows)
		}
		t1 := time.Now()
		res, err := s.trainer.TrainStep(b.q, b.k, b.epoch)
		b.release()
		if err != nil {
			s.err = fmt.Errorf("moco sink: %w", err)
			return
		}
		if !compiled {
			s.logf("first step, compilation included: %.1fs", time.Since(t1).Seconds())
			compiled = true
		}
		res.Keys.FinalizeAll()
		state = b.pipelineState
		s.record(res, wait, time.Since(t1))
		if every := s.cfg.CheckpointEvery; every > 0 && s.cfg.CheckpointDir != "" && s.trainer.Step()%int64(every) == 0 {
			if err := s.checkpoint(state); err != nil {
				s.err = err
				return
			}
		}
	}
	if s.trainer.KNNDue() {
		if err := s.evaluate(false); err != nil {
			s.err = err
			return
		}
	}
	if s.cfg.CheckpointDir != "" && s.trainer.Step() > 0 {
		s.err = s.checkpoint(state)
	}
	if err := s.writeReport(); err != nil && s.err == nil {
		s.err = fmt.Errorf("moco sink: training report: %w", err)
	}
}

func (s *Sink) record(res StepResult, wait, step time.Duration) {
	s.mu.Lock()
	st := &s.stats
	timed := st.firstStepNs != 0 // the first step compiles: not a step time
	if st.firstStepNs == 0 {
		st.firstStepNs = int64(step)
	} else {
		st.waitNs += int64(wait)
		st.stepNs += int64(step)
		st.timedSteps++
	}
	st.steps++
	st.lastLoss, st.lastAccuracy, st.lastLR = res.Loss, res.Accuracy, res.LR
	steps := st.steps
	st.report.step(st.steps, s.trainer.Epoch(), res, wait, step, timed)
	line := ""
	if every := s.cfg.LogEvery; every > 0 && steps%int64(every) == 0 {
		line = s.progressLine()
	}
	s.mu.Unlock()
	if line != "" {
		s.logf("%s", line)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// evaluate runs the kNN monitor, if configured: at init, or for the epoch just finished.
func (s *Sink) evaluate(atInit bool) error {
	if s.opts.KNN == nil || (atInit && s.trainer.Step() > 0) {
		return nil
	}
	t0 := time.Now()
	acc, err := s.trainer.KNNAccuracy(*s.opts.KNN)
	if err != nil {
		return fmt.Errorf("moco sink: knn monitor: %w", err)
	}
	knnTime := time.Since(t0)
	if !atInit {
		s.trainer.KNNDone()
	}
	s.mu.Lock()
	if atInit {
		s.stats.knnInit = &acc
	} else {
		s.stats.knn = append(s.stats.knn, acc)
		s.stats.report.knnTimed(knnTime)
	}
	s.mu.Unlock()
	if atInit {
		s.logf("knn accuracy at init %.4f", acc)
		if s.cfg.KNNPixels {
			pixels, err := PixelKNNAccuracy(*s.opts.KNN, s.cfg.KNNK, s.cfg.KNNTemperature)
			if err != nil {
				return fmt.Errorf("moco sink: %w", err)
			}
			s.mu.Lock()
			s.stats.knnPixels = &pixels
			s.mu.Unlock()
			s.logf("knn accuracy of raw pixels %.4f", pixels)
		}
		return nil
	}
	s.logf("epoch %d knn accuracy %.4f", s.trainer.Epoch()+1, acc)
	return nil
}

func (s *Sink) checkpoint(state []byte) error {
	path, err := s.trainer.Save(s.cfg.CheckpointDir, state)
	if err != nil {
		return fmt.Errorf("moco sink: %w", err)
	}
	s.mu.Lock()
	s.stats.lastCheckpoint = path
	s.mu.Unlock()
	return nil
}

func (s *Sink) logf(format string, args ...any) {
	if s.opts.Log != nil {
		fmt.Fprintf(s.opts.Log, "moco: "+format+"\n", args...)
	}
}

// Close lets the queued batches train, runs the last kNN evaluation and checkpoint, and stops
// the training goroutine. It returns the first training error.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() { close(s.batches) })
	<-s.done
	for b := range s.batches { // left behind if training stopped early
		b.release()
	}
	return s.err
}

// Summary reports steps, final_loss, final_accuracy, data_wait_fraction, mean step time and,
// with a kNN split, knn_accuracy (after the last epoch) and knn_accuracy_at_init.
func (s *Sink) Summary() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	out := map[string]any{
		"steps":          st.steps,
		"final_loss":     st.lastLoss,
		"final_accuracy": st.lastAccuracy,
		"final_lr":       st.lastLR,
		"first_step_s":   float64(st.firstStepNs) / 1e9,
		"dropped_rows":   st.droppedRows,
		"backend":        device.KindOf(s.trainer.Backend()),
	}
	if st.waitNs+st.stepNs > 0 {
		out["data_wait_fraction"] = float64(st.waitNs) / float64(st.waitNs+st.stepNs)
		out["mean_step_ms"] = float64(st.stepNs) / 1e6 / float64(st.timedSteps)
	}
	if st.knnInit != nil {
		out["knn_accuracy_at_init"] = *st.knnInit
	}
	if st.knnPixels != nil {
		out["knn_pixels_accuracy"] = *st.knnPixels
	}
	if len(st.knn) > 0 {
		out["knn_accuracy"] = st.knn[len(st.knn)-1]
		out["knn_accuracy_per_epoch"] = append([]float64(nil), st.knn...)
	}
	if st.lastCheckpoint != "" {
		out["checkpoint"] = st.lastCheckpoint
	}
	if st.report.path != "" {
		out["report"] = st.report.path
	}
	return out
}
