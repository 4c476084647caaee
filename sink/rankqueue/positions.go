package rankqueue

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
)

// The metadata every batch carries to its consumer once the runtime hands the sink positions
// (SetPipelineState), as Arrow IPC message metadata and, on Flight, as the message's
// app_metadata (docs/arrow-schema.md, "Batch metadata"; docs/transport.md, "Resume").
const (
	// MetaBatch is the batch's index in the whole stream, counting the batches of the runs
	// this one resumed: it goes to rank MetaBatch mod world.
	MetaBatch = "pipeline.batch"
	// MetaPosition is the source position right after the batch: where this rank's part of
	// the stream stands once it has the batch.
	MetaPosition = "pipeline.position"
	// MetaRoundStart is the state, in the format of `pipeline run --state` files, at the start
	// of the batch's round (the World batches from a multiple of World on, one per rank): every
	// rank that has this round's batch can resume the whole run from it without losing a
	// sample, each dropping the batches it already has.
	MetaRoundStart = "pipeline.round_start"
)

// positions numbers the batches and tracks round starts; guarded by the Dispatcher's mu.
type positions struct {
	started bool
	pending json.RawMessage // the source position after the next batch (nil: not handed)
	last    json.RawMessage // the source position after the last batch queued (or the start)
	round   json.RawMessage // MetaRoundStart of the round being dealt
	err     error           // a state that did not parse: Put fails with it
}

// roundStart is a MetaRoundStart value, which `pipeline run --resume` reads.
type roundStart struct {
	Position json.RawMessage `json:"position"`
	Batches  int64           `json:"batches"`
}

// SetPipelineState takes the runtime's hand-off (sink.Stateful): state is JSON
// {"epoch":E,"offset":O,"batches":N}, the source position and the batches of the stream up to
// there. The first call says where the stream starts: batch numbering and dealing continue
// from batch N (so a resumed run gives each rank the batches it would have had). Each later
// call, made before a Put, is where the stream stands after that batch.
func (d *Dispatcher) SetPipelineState(state []byte) {
	var fields map[string]json.RawMessage
	var batches int64
	err := json.Unmarshal(state, &fields)
	if err == nil {
		err = json.Unmarshal(fields["batches"], &batches)
	}
	delete(fields, "batches")
	pos, _ := json.Marshal(fields) // what is left: the source's position, opaque here
	d.mu.Lock()
	defer d.mu.Unlock()
	p := &d.positions
	switch {
	case err != nil:
		p.err = fmt.Errorf("rankqueue: pipeline state %q: %w", state, err)
	case !p.started && d.schema == nil:
		p.started, p.last = true, pos
		d.next, d.first = batches, batches
	default:
		p.pending = pos
	}
}

// PipelineState is nil: the sink keeps no checkpoint of its own, its consumers do.
func (d *Dispatcher) PipelineState() []byte { return nil }

// stamp gives rec the metadata of batch seq of a world-rank stream, when positions are handed.
func (p *positions) stamp(rec arrow.RecordBatch, seq int64, world int) (arrow.RecordBatch, error) {
	if p.err != nil {
		return nil, p.err
	}
	if p.pending == nil {
		return rec, nil
	}
	pos := p.pending
	p.pending = nil
	// A run resumed in mid-round starts its first round where it starts: the batches of that
	// round before it are not in this run.
	if seq%int64(world) == 0 || p.round == nil {
		p.round, _ = json.Marshal(roundStart{Position: p.last, Batches: seq})
	}
	p.last = pos
	md := arrow.NewMetadata([]string{MetaBatch, MetaPosition, MetaRoundStart},
		[]string{strconv.FormatInt(seq, 10), string(pos), string(p.round)})
	return positioned{RecordBatch: rec, md: md}, nil
}

// positioned is a record with IPC message metadata. It embeds the record, so Retain and
// Release still reach it (the batcher's memory accounting lives there).
type positioned struct {
	arrow.RecordBatch
	md arrow.Metadata
}

var _ arrow.RecordBatchWithMetadata = positioned{}

func (r positioned) Metadata() arrow.Metadata { return r.md }

// Metadata is the position metadata of a record from Next, nil when it has none.
func Metadata(rec arrow.RecordBatch) map[string]string {
	r, ok := rec.(arrow.RecordBatchWithMetadata)
	if !ok || r.Metadata().Len() == 0 {
		return nil
	}
	return r.Metadata().ToMap()
}
