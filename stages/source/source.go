// Package source is the pipeline's input as the runtime uses it: it opens the dataset a
// config names (tar shards, an image folder or synthetic JPEGs), gives this rank its share,
// and yields the samples of every epoch in a deterministic, resumable order.
//
// The stream of one epoch is built in four steps:
//
//  1. the rank's parts (shards; for a folder or synthetic data, single samples) are put in a
//     seeded random order, a new one each epoch (shuffle_shards, default on);
//  2. reader r of R reads parts r, r+R, r+2R, ... of that order, and the readers' samples are
//     interleaved round-robin (one sample from each reader in turn), so the stream does not
//     depend on which reader is faster;
//  3. a seeded shuffle buffer of shuffle_buffer samples mixes them further;
//  4. Meta.Epoch is set.
//
// Every random choice comes from (seed, epoch, rank), so the same config and seed give the same
// stream. Changing readers changes the interleaving; changing nothing else keeps it.
//
// Meta.Index, the stable global index of a sample, is:
//   - tar shards: shard number << 32 | position of the sample in its shard, where the shard
//     number is the shard's place in the expanded list of all shard patterns (the same on every
//     rank) and bad samples count in the position;
//   - folder: the position of the file in the sorted list of <class>/<file> names;
//   - synthetic: the sample number, 0 to count-1.
//
// Exact resume: Position{Epoch, Offset} counts the samples of that epoch already delivered
// (bad samples included, shard errors not). Open with Options.Start yields exactly what the
// uninterrupted run would have yielded from there. It first replays the epoch's order up to
// the resume point reading headers only (the shuffle buffer's choices depend on how many
// samples came in, never on their bytes), then reads again, skipping unread the bytes of the
// samples already delivered; only the samples that sat in the shuffle buffer at that point are
// read in full. Resuming costs about two header-only passes over the delivered part of the
// epoch (for gzip shards, decompressing it twice), and no memory for it.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"pipeline/pipeline"
	"pipeline/stages/shardlist"
)

// Options are the run-level inputs of a source.
type Options struct {
	Seed    uint64
	Epochs  int      // number of epochs to read; 0 means 1
	Start   Position // where to resume; the zero Position starts at the beginning
	Account *pipeline.Account
}

// Source yields the samples of a dataset for this rank, epoch after epoch. Next is called from
// one goroutine; Position may be read from any.
type Source struct {
	cfg    Config
	ds     dataset
	parts  []int // this rank's parts
	seed   uint64
	epochs int
	alloc  *guardedAccount

	mu     sync.Mutex // guards epoch and offset for Position
	epoch  int
	offset int64

	stream   *epochStream
	reserved func() // gives back what reserveReaderBuffers took; nil when nothing
}

// Open prepares a source; it reads no sample before the first Next.
func Open(cfg Config, opt Options) (*Source, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if opt.Account == nil {
		return nil, errors.New("source: Options.Account is nil")
	}
	if opt.Epochs < 0 || opt.Start.Epoch < 0 || opt.Start.Offset < 0 {
		return nil, fmt.Errorf("source: epochs %d and start %+v cannot be negative", opt.Epochs, opt.Start)
	}
	if opt.Epochs == 0 {
		opt.Epochs = 1
	}
	// The position right after a whole run ({Epochs, 0}) leaves nothing to read; one past it
	// comes from another run or config and would silently read nothing.
	if st := opt.Start; st.Epoch > opt.Epochs || st.Epoch == opt.Epochs && st.Offset > 0 {
		return nil, fmt.Errorf("source: resume position epoch %d, sample %d is past the end of the run's %d epochs: the state or checkpoint comes from another config (raise epochs to go on training)",
			st.Epoch, st.Offset, opt.Epochs)
	}
	ds, err := newDataset(cfg)
	if err != nil {
		return nil, err
	}
	all := make([]int, ds.parts())
	for i := range all {
		all[i] = i
	}
	parts, err := shardlist.ForRank(all, *cfg.Rank, *cfg.WorldSize)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	s := &Source{
		cfg: cfg, ds: ds, parts: parts, seed: opt.Seed, epochs: opt.Epochs,
		alloc: &guardedAccount{acct: opt.Account, cfg: cfg},
		epoch: opt.Start.Epoch, offset: opt.Start.Offset,
	}
	if err := s.reserveReaderBuffers(opt.Account); err != nil {
		return nil, err
	}
	return s, nil
}

// reserveReaderBuffers charges the buffers the readers hold besides their samples (remote
// read-ahead, Parquet row groups) to the encoded account, once for the source's life, and
// counts them as held so that guardedAccount leaves them room.
func (s *Source) reserveReaderBuffers(acct *pipeline.Account) error {
	b, ok := s.ds.(interface{ readAheadPerReader() int64 })
	if !ok || b.readAheadPerReader() == 0 {
		return nil
	}
	n := int64(s.cfg.Readers) * b.readAheadPerReader()
	if err := acct.Reserve(context.Background(), n); err != nil {
		return fmt.Errorf("source: the read-ahead of %d readers (source.remote.prefetch and chunk_bytes): %w", s.cfg.Readers, err)
	}
	s.reserved = func() { acct.Return(n); s.alloc.held.Add(-n) }
	s.alloc.held.Add(n)
	return nil
}

// Next returns the next sample, a *pipeline.SampleError for a bad sample, a
// *pipeline.ShardError for a bad shard (the next call goes on with the next shard), or io.EOF
// after the last epoch.
func (s *Source) Next(ctx context.Context) (*pipeline.Item, error) {
	for {
		if s.stream == nil {
			if s.epoch >= s.epochs {
				return nil, io.EOF
			}
			st, err := s.startEpoch(ctx, s.epoch, s.offset)
			if err != nil {
				return nil, err
			}
			s.stream = st
		}
		el, err := s.stream.Next(ctx)
		if err == io.EOF {
			s.stream.Close()
			s.stream = nil
			s.mu.Lock()
			s.epoch++
			s.offset = 0
			s.mu.Unlock()
			continue
		}
		if err != nil {
			return nil, err
		}
		if !el.slot() {
			return nil, el.err
		}
		s.mu.Lock()
		epoch := s.epoch
		s.offset++
		s.mu.Unlock()
		if el.item == nil {
			se, _ := pipeline.AsSampleError(el.err) // slot() holds: a sample or a bad sample
			se.Meta.Epoch = epoch
			return nil, se
		}
		s.alloc.held.Add(-int64(cap(el.item.Encoded)))
		el.item.Epoch = epoch
		return el.item, nil
	}
}

// Position is how far Next got: the epoch and the samples of it returned so far. The source
// runs ahead of the trainer by the samples in flight, so a checkpoint should rather record the
// position of the last sample the trainer took, which Position.Advance computes.
func (s *Source) Position() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Position{Epoch: s.epoch, Offset: s.offset}
}

// Close stops the readers and releases the samples read ahead.
func (s *Source) Close() error {
	if s.stream != nil {
		s.stream.Close()
		s.stream = nil
	}
	if c, ok := s.ds.(interface{ close() }); ok {
		c.close() // files opened ahead that no reader took
	}
	if s.reserved != nil {
		s.reserved()
		s.reserved = nil
	}
	return nil
}

// order is the rank's parts in the order epoch reads them.
func (s *Source) order(epoch int) []int {
	order := slices.Clone(s.parts)
	if *s.cfg.ShuffleShards {
		rng := rand.New(rand.NewPCG(s.seed, mix(uint64(epoch), uint64(*s.cfg.Rank), 1)))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	return order
}

func (s *Source) bufferRNG(epoch int) *rand.Rand {
	return rand.New(rand.NewPCG(s.seed, mix(uint64(epoch), uint64(*s.cfg.Rank), 2)))
}

func (s *Source) readers(order []int) int { return min(s.cfg.Readers, len(order)) }

// startEpoch opens the stream of epoch, skipping its first offset samples.
func (s *Source) startEpoch(ctx context.Context, epoch int, offset int64) (*epochStream, error) {
	order := s.order(epoch)
	n := s.readers(order)
	replays := make([]replay, n)
	if offset > 0 {
		var err error
		if replays, err = s.plan(ctx, epoch, order, offset); err != nil {
			return nil, err
		}
	}
	lanes := make([]elementStream, n)
	for r := range lanes {
		l := &lane{ds: s.ds, parts: shardlist.Stride(order, r, n), alloc: s.alloc, replay: replays[r], held: &s.alloc.held}
		if n == 1 {
			lanes[r] = l
		} else {
			lanes[r] = startLane(ctx, l)
		}
	}
	return &epochStream{
		sh:    newShuffler(newMerger(lanes), s.cfg.ShuffleBuffer, s.bufferRNG(epoch)),
		epoch: epoch, ghostsLeft: offset,
	}, nil
}

// plan replays the first offset samples of epoch without their bytes and returns, for each
// reader, how many of its elements had been consumed and which samples were still buffered.
func (s *Source) plan(ctx context.Context, epoch int, order []int, offset int64) ([]replay, error) {
	n := s.readers(order)
	lanes := make([]elementStream, n)
	for r := range lanes {
		lanes[r] = &lane{ds: s.ds, parts: shardlist.Stride(order, r, n), ghosts: true}
	}
	m := newMerger(lanes)
	sh := newShuffler(m, s.cfg.ShuffleBuffer, s.bufferRNG(epoch))
	defer sh.Close()
	for done := int64(0); done < offset; {
		el, err := sh.Next(ctx)
		if err == io.EOF {
			return nil, fmt.Errorf("source: resume position %d of epoch %d is past the end of the epoch (%d samples): the data or the source config changed since the checkpoint", offset, epoch, done)
		}
		if err != nil {
			return nil, fmt.Errorf("source: planning the resume: %w", err)
		}
		if el.slot() {
			done++
		}
	}
	buffered := map[int64]bool{}
	for _, el := range sh.buf {
		if el.item != nil {
			buffered[el.item.Index] = true
		}
	}
	replays := make([]replay, n)
	for r := range replays {
		replays[r] = replay{count: m.taken[r], buffered: buffered}
	}
	return replays, nil
}

// epochStream is one epoch's shuffled stream, which drops the samples delivered before a
// resume point.
type epochStream struct {
	sh         *shuffler
	epoch      int
	ghostsLeft int64
}

func (e *epochStream) Next(ctx context.Context) (element, error) {
	for {
		el, err := e.sh.Next(ctx)
		if err != nil {
			return el, err
		}
		if !el.slot() {
			if e.ghostsLeft > 0 {
				continue // a bad shard that the run before the resume point reported
			}
			return el, nil
		}
		if e.ghostsLeft > 0 {
			e.ghostsLeft--
			if el.item != nil && !el.ghost {
				el.release()
				return element{}, fmt.Errorf("source: resume of epoch %d: %s was read in full but lies before the resume point; the data changed while resuming", e.epoch, el.item.Meta)
			}
			continue
		}
		if el.item != nil && el.ghost {
			return element{}, fmt.Errorf("source: resume of epoch %d: %s was skipped but lies after the resume point; the data changed while resuming", e.epoch, el.item.Meta)
		}
		return el, nil
	}
}

func (e *epochStream) Close() { e.sh.Close() }

// guardedAccount allocates from the encoded account, failing instead of waiting forever when
// the samples the source itself holds (shuffle buffer, readers' read-ahead) leave no room.
type guardedAccount struct {
	acct budgetAccount
	cfg  Config
	held atomic.Int64 // bytes of samples read and not yet returned by Next
}

// budgetAccount is the part of *pipeline.Account the source uses.
type budgetAccount interface {
	allocator
	Limit() int64
	Name() string
}

func (g *guardedAccount) Alloc(ctx context.Context, it *pipeline.Item, n int) ([]byte, error) {
	need := int64(max(4096, n+n/4)) // an upper bound of the account's size class for n
	if held := g.held.Load(); held+need > g.acct.Limit() {
		return nil, fmt.Errorf("source: %s: the source holds %d bytes read ahead (shuffle_buffer %d, readers %d) and needs %d more, "+
			"but the %s share of memory_budget is %d bytes, so it would wait forever: lower shuffle_buffer or raise memory_budget",
			it.Meta, held, g.cfg.ShuffleBuffer, g.cfg.Readers, n, g.acct.Name(), g.acct.Limit())
	}
	return g.acct.Alloc(ctx, it, n)
}
