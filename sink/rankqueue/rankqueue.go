// Package rankqueue splits one ordered stream of Arrow record batches between the ranks of a
// data-parallel trainer. Batch i goes to rank i mod world, so which rank sees which batch
// depends only on the batch order, never on which consumer happened to be faster. Each rank
// has its own queue bounded in bytes; the producer blocks while the queue of the rank whose
// turn it is has no room, which is how a slow trainer slows the pipeline.
//
// The socket and Flight sinks share it, with the bookkeeping of how a stream ends (Fail,
// Finish), what the summary says and where each batch leaves the stream (Positions): they only
// move the records a Consumer hands them.
package rankqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"pipeline/schema"
)

// Defaults the sinks built on a Dispatcher give their zero config values.
const (
	DefaultQueueBytes   = 160 << 20 // per rank: two 77 MB batches (256 x 2 views of 224x224x3)
	DefaultCloseTimeout = 2 * time.Minute
)

// ErrClosed is returned by Put after Close, and by Claim once the stream has ended.
var ErrClosed = errors.New("rankqueue: stream closed")

// Config sizes a Dispatcher.
type Config struct {
	// World is the number of ranks. Zero means the first consumer to claim a rank sets it;
	// Put waits until then, since it cannot route a batch without it.
	World int
	// QueueBytes bounds each rank's queue, counting the batch its consumer is sending. A batch
	// is always let into an empty queue, so a batch larger than QueueBytes cannot stall.
	QueueBytes int64
}

// Dispatcher routes records to per-rank queues. Put and Close are called by one producer;
// each claimed rank's Consumer is used by one goroutine.
type Dispatcher struct {
	queueBytes int64

	mu        sync.Mutex
	world     int
	ranks     []*rankQueue
	next      int64 // sequence number of the next record in the whole stream
	first     int64 // that of this run's first record (not 0 in a resumed run)
	schema    *arrow.Schema
	closed    bool
	err       error // set once by abort; every waiter returns it
	failure   error // the producer's run failed (Fail): Finish aborts instead of draining
	refused   []string
	blockedNs int64 // time Put spent waiting for room or for the world size
	positions positions

	worldSet  chan struct{} // closed once world is known
	schemaSet chan struct{} // closed at the first Put or at Close
	closedCh  chan struct{} // closed by Close
	drained   chan struct{} // closed by Close once every queue is empty: consumers get io.EOF
	failed    chan struct{} // closed by abort
}

type queued struct {
	rec  arrow.RecordBatch
	size int64
}

type rankQueue struct {
	items     []queued
	bytes     int64 // queued plus in flight
	claimedBy string
	sent      int64         // batches handed to the consumer and confirmed by Done
	ready     chan struct{} // one token: a record was queued
	space     chan struct{} // one token: bytes were freed
}

// New makes a dispatcher. cfg.World < 0 or cfg.QueueBytes <= 0 are errors.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.World < 0 {
		return nil, fmt.Errorf("rankqueue: world size %d is negative", cfg.World)
	}
	if cfg.QueueBytes <= 0 {
		return nil, fmt.Errorf("rankqueue: queue size %d bytes must be positive", cfg.QueueBytes)
	}
	d := &Dispatcher{
		queueBytes: cfg.QueueBytes,
		worldSet:   make(chan struct{}),
		schemaSet:  make(chan struct{}),
		closedCh:   make(chan struct{}),
		drained:    make(chan struct{}),
		failed:     make(chan struct{}),
	}
	if cfg.World > 0 {
		d.setWorldLocked(cfg.World)
	}
	return d, nil
}

func (d *Dispatcher) setWorldLocked(world int) {
	d.world = world
	d.ranks = make([]*rankQueue, world)
	for i := range d.ranks {
		d.ranks[i] = &rankQueue{ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
	}
	close(d.worldSet)
}

// Put queues rec for rank seq mod world (seq counts from where SetPipelineState says the stream
// starts, else 0), taking ownership of it: it is released by the
// consumer once sent, or here if Put fails. Put blocks while that rank's queue is full. A
// cancelled ctx counts as the run failing (Fail): consumers then get an error, not a short
// stream that looks complete.
func (d *Dispatcher) Put(ctx context.Context, rec arrow.RecordBatch) error {
	err := d.put(ctx, rec)
	if err != nil && ctx.Err() != nil {
		d.Fail(ctx.Err())
	}
	return err
}

func (d *Dispatcher) put(ctx context.Context, rec arrow.RecordBatch) error {
	size := schema.RecordBytes(rec)
	t0 := time.Now()
	defer func() {
		d.mu.Lock()
		d.blockedNs += int64(time.Since(t0))
		d.mu.Unlock()
	}()
	select {
	case <-d.worldSet:
	case <-ctx.Done():
		rec.Release()
		return ctx.Err()
	case <-d.failed:
	case <-d.closedCh:
	}
	d.mu.Lock()
	for {
		if err := d.putErrLocked(); err != nil {
			d.mu.Unlock()
			rec.Release()
			return err
		}
		if d.schema == nil {
			d.schema = rec.Schema()
			close(d.schemaSet)
		} else if !d.schema.Equal(rec.Schema()) {
			d.mu.Unlock()
			rec.Release()
			return fmt.Errorf("rankqueue: batch %d has schema %s, want %s", d.next, rec.Schema(), d.schema)
		}
		rank := int(d.next % int64(d.world))
		q := d.ranks[rank]
		if q.bytes == 0 || q.bytes+size <= d.queueBytes {
			stamped, err := d.positions.stamp(rec, d.next, d.world)
			if err != nil {
				d.mu.Unlock()
				rec.Release()
				return err
			}
			q.items = append(q.items, queued{rec: stamped, size: size})
			q.bytes += size
			d.next++
			d.mu.Unlock()
			signal(q.ready)
			return nil
		}
		d.mu.Unlock()
		select {
		case <-q.space:
		case <-ctx.Done():
			rec.Release()
			return ctx.Err()
		case <-d.failed:
		}
		d.mu.Lock()
	}
}

func (d *Dispatcher) putErrLocked() error {
	if d.err != nil {
		return d.err
	}
	if d.closed {
		return ErrClosed
	}
	return nil
}

// Close ends the stream: no more Puts. It waits until every queued batch has been sent (Done),
// then every consumer gets io.EOF: a rank's clean end means the whole stream was delivered.
// If ctx ends first it aborts the stream, releasing what is left, and returns an error that
// counts it.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.closedCh)
		if d.schema == nil {
			close(d.schemaSet)
		}
	}
	ranks := d.ranks
	d.mu.Unlock()
	for r, q := range ranks {
		for {
			d.mu.Lock()
			left, sent, who, err := len(q.items), q.sent, q.claimedBy, d.err
			empty := q.bytes == 0
			d.mu.Unlock()
			if err != nil {
				return err
			}
			if empty {
				break
			}
			select {
			case <-q.space:
				continue
			case <-d.failed:
				continue
			case <-ctx.Done():
			}
			if who == "" {
				who = "no consumer"
			}
			err = fmt.Errorf("rank %d (%s) took %d batches; %d more were never sent: %w", r, who, sent, left, ctx.Err())
			d.Abort(err)
			return err
		}
	}
	close(d.drained)
	return nil
}

// Fail records that the producer's run failed, so that Finish aborts the stream rather than
// ending it cleanly. The first failure wins.
func (d *Dispatcher) Fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failure == nil {
		d.failure = err
	}
}

// Finish ends the stream the way the run ended: after Fail it aborts, so every consumer gets
// an error; otherwise it is Close, which waits (until ctx ends) for every queued batch to be
// sent. The error is Close's; after Fail it is nil, since the run reports its own failure.
func (d *Dispatcher) Finish(ctx context.Context) error {
	d.mu.Lock()
	failure := d.failure
	d.mu.Unlock()
	if failure != nil {
		d.Abort(fmt.Errorf("the producer failed: %w", failure))
		return nil
	}
	return d.Close(ctx)
}

// Abort fails the stream with err: Put, Next and Close return it from now on, and the batches
// still queued are released. The first error wins.
func (d *Dispatcher) Abort(err error) {
	d.mu.Lock()
	if d.err != nil {
		d.mu.Unlock()
		return
	}
	d.err = err
	var drop []queued
	for _, q := range d.ranks {
		for _, it := range q.items {
			q.bytes -= it.size
		}
		drop = append(drop, q.items...)
		q.items = nil
	}
	close(d.failed)
	d.mu.Unlock()
	for _, it := range drop {
		it.rec.Release()
	}
}

// Err is the error the stream was aborted with, or nil.
func (d *Dispatcher) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Claim hands rank to one consumer, named who in errors and summaries. world must match the
// configured world size, or sets it when that was left to the first consumer. A run that
// already failed is no refusal: the rank is handed out and its first Next returns the cause, so
// a rank that connects after another died sees the same aborted stream as one connected before.
func (d *Dispatcher) Claim(rank, world int, who string) (*Consumer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if world < 1 {
		return nil, fmt.Errorf("world size %d must be at least 1", world)
	}
	if d.world == 0 {
		if d.closed {
			return nil, ErrClosed
		}
		d.setWorldLocked(world)
	}
	if world != d.world {
		return nil, fmt.Errorf("world size %d does not match the producer's %d", world, d.world)
	}
	if rank < 0 || rank >= d.world {
		return nil, fmt.Errorf("rank %d is out of range for world size %d", rank, d.world)
	}
	q := d.ranks[rank]
	if q.claimedBy != "" {
		return nil, fmt.Errorf("rank %d is already served to %s", rank, q.claimedBy)
	}
	q.claimedBy = who
	return &Consumer{d: d, q: q, rank: rank}, nil
}

// Schema waits for the stream's schema: that of the first batch, or nil when the stream was
// closed before any batch came.
func (d *Dispatcher) Schema(ctx context.Context) (*arrow.Schema, error) {
	select {
	case <-d.schemaSet:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-d.failed:
		return nil, d.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.schema, nil
}

// QueuedBytes is what all queues hold now, batches in flight included.
func (d *Dispatcher) QueuedBytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for _, q := range d.ranks {
		n += q.bytes
	}
	return n
}

// RankStats is one rank's share of the stream so far.
type RankStats struct {
	Rank     int    `json:"rank"`
	Consumer string `json:"consumer"`
	Sent     int64  `json:"batches_sent"`
	Queued   int    `json:"batches_queued"`
}

// Refused records a consumer turned away (a bad handshake or ticket, a rank already taken),
// for Summary.
func (d *Dispatcher) Refused(who string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refused = append(d.refused, fmt.Sprintf("%s: %v", who, err))
}

// Summary reports the batches routed so far, how long Put waited for the consumers, each
// rank's share and the consumers refused: the part of a sink's summary that is the stream's.
func (d *Dispatcher) Summary() map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	ranks := []RankStats{}
	for i, q := range d.ranks {
		ranks = append(ranks, RankStats{Rank: i, Consumer: q.claimedBy, Sent: q.sent, Queued: len(q.items)})
	}
	return map[string]any{
		"batches":         d.next - d.first,
		"write_blocked_s": time.Duration(d.blockedNs).Seconds(),
		"ranks":           ranks,
		"refused":         append([]string{}, d.refused...),
	}
}

// Consumer takes one rank's batches in order.
type Consumer struct {
	d        *Dispatcher
	q        *rankQueue
	rank     int
	inFlight *queued
}

// Rank is the rank this consumer serves.
func (c *Consumer) Rank() int { return c.rank }

// Sent is the number of batches this consumer has confirmed with Done.
func (c *Consumer) Sent() int64 {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return c.q.sent
}

// Next returns the rank's next batch, io.EOF once Close has seen every batch of every rank
// sent, or the stream's error once aborted. The batch stays counted in the queue (and owned by the
// dispatcher) until Done or Fail.
func (c *Consumer) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if c.inFlight != nil {
		return nil, fmt.Errorf("rankqueue: rank %d: Next before Done", c.rank)
	}
	for {
		c.d.mu.Lock()
		if err := c.d.err; err != nil {
			c.d.mu.Unlock()
			return nil, err
		}
		if len(c.q.items) > 0 {
			it := c.q.items[0]
			c.q.items[0] = queued{}
			c.q.items = c.q.items[1:]
			c.d.mu.Unlock()
			c.inFlight = &it
			return it.rec, nil
		}
		c.d.mu.Unlock()
		select {
		case <-c.q.ready:
		case <-c.d.drained:
			return nil, io.EOF
		case <-c.d.failed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Done confirms the batch from Next was sent: it is released and its bytes freed.
func (c *Consumer) Done() {
	if c.inFlight == nil {
		return
	}
	it := c.inFlight
	c.inFlight = nil
	it.rec.Release()
	c.d.mu.Lock()
	c.q.bytes -= it.size
	c.q.sent++
	c.d.mu.Unlock()
	signal(c.q.space)
}

// Fail reports that this rank's consumer is gone, with the batch from Next possibly half
// sent. There is no acknowledgement from the trainer, so the batch can be neither counted as
// delivered nor safely sent again: the whole stream is aborted with an error naming the rank.
func (c *Consumer) Fail(cause error) error {
	c.d.mu.Lock()
	sent, who := c.q.sent, c.q.claimedBy
	c.d.mu.Unlock()
	err := fmt.Errorf("rank %d consumer %s lost after %d batches: %w", c.rank, who, sent, cause)
	c.d.Abort(err)
	if it := c.inFlight; it != nil {
		c.inFlight = nil
		it.rec.Release()
		c.d.mu.Lock()
		c.q.bytes -= it.size
		c.d.mu.Unlock()
		signal(c.q.space)
	}
	return c.d.Err()
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
