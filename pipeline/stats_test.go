package pipeline

import (
	"context"
	"io"
	"testing"
	"time"
)

// gateSource yields one item, then waits for gate before ending.
type gateSource struct {
	sent bool
	gate chan struct{}
}

func (s *gateSource) Next(ctx context.Context) (*Item, error) {
	if !s.sent {
		s.sent = true
		return &Item{}, nil
	}
	<-s.gate
	return nil, io.EOF
}

// grows waits until f() exceeds base, failing if it never does (a wait that is not counted).
func grows(t *testing.T, what string, base time.Duration, f func() time.Duration) {
	t.Helper()
	for range 5000 {
		if f() > base {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s stayed at %v while the wait went on", what, f())
}

// A wait for input, or for room downstream, that spans sampling intervals counts in every
// snapshot taken while it lasts, as a running call counts as busy: otherwise the monitor's
// intervals show the stage in no state at all, then the whole wait at once (clamped to 1).
func TestSnapshotCountsWaitsInProgress(t *testing.T) {
	// The sink waits for a source stuck in Next: starved.
	r := NewRun(context.Background(), Fail)
	gate := make(chan struct{})
	got := make(chan struct{})
	src := r.Source("read", &gateSource{gate: gate}, 1, nil)
	r.Consume("sink", src, func(ctx context.Context, it *Item) error { close(got); return nil }, nil)
	<-got
	sink := r.Stages()[1]
	grows(t, "the sink's starved time", sink.Snapshot().Starved, func() time.Duration { return sink.Snapshot().Starved })
	close(gate)
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if s := sink.Snapshot(); s.Starved != time.Duration(sink.StarvedNs.Load()) {
		t.Fatalf("an ended stage's snapshot %v differs from its counter %v", s.Starved, time.Duration(sink.StarvedNs.Load()))
	}

	// The source waits for room in a queue nobody empties: blocked.
	r = NewRun(context.Background(), Fail)
	release := make(chan struct{})
	started := make(chan struct{})
	src = r.Source("read", &countSource{n: 4}, 1, nil)
	r.Consume("sink", src, func(ctx context.Context, it *Item) error {
		if it.Index == 0 {
			close(started)
			<-release
		}
		return nil
	}, nil)
	<-started
	read := r.Stages()[0]
	grows(t, "the source's blocked time", read.Snapshot().Blocked, func() time.Duration { return read.Snapshot().Blocked })
	close(release)
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if s := read.Snapshot(); s.Blocked != time.Duration(read.BlockedNs.Load()) {
		t.Fatalf("an ended stage's snapshot %v differs from its counter %v", s.Blocked, time.Duration(read.BlockedNs.Load()))
	}
}
