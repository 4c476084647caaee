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

// State encodes the position as the opaque bytes a stateful sink checkpoints beside its own
// state; ParseState reads them back.
func (p Position) State() []byte {
	b, _ := json.Marshal(p) // two integers: cannot fail
	return b
}

// ParseState reads a position State wrote; empty bytes (a checkpoint without one) give nil.
func ParseState(b []byte) (*Position, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var p Position
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("the sink's checkpoint holds a pipeline position that does not parse: %w", err)
	}
	return &p, nil
}
