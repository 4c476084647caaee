package source

import (
	"encoding/json"
	"fmt"

	"pipeline/pipeline"
)

// Position is how far a run got: Offset samples of epoch Epoch were delivered (good and bad
// samples both count; whole-shard errors do not). It is the source's part of a checkpoint.
type Position struct {
	Epoch  int   `json:"epoch" yaml:"epoch"`
	Offset int64 `json:"offset" yaml:"offset"`
}

// Advance is the position after one more sample (good or skipped) with meta m, taken in
// stream order: start from Options.Start and advance over every item the consumer receives.
func (p Position) Advance(m pipeline.Meta) Position {
	if m.Epoch != p.Epoch {
		return Position{Epoch: m.Epoch, Offset: 1}
	}
	return Position{Epoch: p.Epoch, Offset: p.Offset + 1}
}

// State encodes the position, and the batches of the stream up to it (counting those of the
// runs it resumed from), as the bytes handed to a stateful sink (sink.Stateful), which
// checkpoints them beside its own state or passes them on: {"epoch":E,"offset":O,"batches":N}.
// ParseState reads them back.
func (p Position) State(batches int64) []byte {
	b, _ := json.Marshal(state{p, batches}) // three integers: cannot fail
	return b
}

type state struct {
	Position
	Batches int64 `json:"batches"`
}

// ParseState reads a position State wrote and its batch count (0 in a state written before
// they were counted); empty bytes (a checkpoint without one) give nil.
func ParseState(b []byte) (*Position, int64, error) {
	if len(b) == 0 {
		return nil, 0, nil
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, 0, fmt.Errorf("the sink's checkpoint holds a pipeline position that does not parse: %w", err)
	}
	return &st.Position, st.Batches, nil
}
