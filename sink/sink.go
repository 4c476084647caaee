// Package sink defines what consumes the pipeline's Arrow batches: a trainer, a file, a socket.
package sink

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
)

// Sink consumes batches in order. Write takes ownership of rec and must Release it once done
// with it (that gives the batch's bytes back to the memory budget). Write blocking is how a
// slow sink slows the whole pipeline. Close flushes and releases everything; it is called once,
// also after an error or cancellation.
type Sink interface {
	Write(ctx context.Context, rec arrow.RecordBatch) error
	Close() error
	// Summary returns sink-specific figures for the end-of-run summary (JSON-encodable).
	Summary() map[string]any
}

// Failer is a sink that can tell its consumers a run failed, so that they see an error rather
// than a clean end of stream. The runtime calls Fail before Close when the run ends in error.
type Failer interface {
	Fail(err error)
}

// Stateful is a sink that checkpoints the pipeline's position with its own state (a trainer),
// or passes it on to consumers that do (the socket and Flight sinks), so that a resumed run
// reads exactly the samples the interrupted one had not yet consumed. The state is JSON
// {"epoch":E,"offset":O,"batches":N}: the source position and the batches of the stream up to
// it (those of the runs resumed from included). The runtime calls SetPipelineState once before
// the first Write with where the run starts, then before each Write with the state right after
// that batch; at start, it resumes from PipelineState when it is not empty.
type Stateful interface {
	SetPipelineState(state []byte)
	PipelineState() []byte
}
