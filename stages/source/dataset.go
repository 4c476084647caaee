package source

import (
	"context"
	"fmt"
	"io"
	"time"

	"pipeline/pipeline"
	"pipeline/stages/folder"
	"pipeline/stages/objstore"
	"pipeline/stages/shardlist"
	"pipeline/stages/synthetic"
	"pipeline/stages/tarshard"
)

// allocator hands out encoded-byte buffers; *pipeline.Account is one.
type allocator interface {
	Alloc(ctx context.Context, it *pipeline.Item, n int) ([]byte, error)
}

// partReader yields the samples of one part, then io.EOF.
type partReader interface {
	Next(ctx context.Context) (*pipeline.Item, error)
	Close() error
}

// dataset is a list of parts that can each be read on their own: tar shards, or single files.
// Shuffling, rank splits and reader splits all work on part numbers.
type dataset interface {
	parts() int
	open(part int, alloc allocator, skip func(index int64) bool) partReader
}

type tarDataset struct {
	shards    []shardlist.Shard
	opt       tarshard.Options
	readAhead int64 // bytes one open remote shard holds in read-ahead buffers (0: all local)
	pre       *shardPrefetcher
}

// readAheadPerReader is what one reader holds besides its samples, charged at Open: the
// read-ahead of the shard it reads and of the next one, opened ahead.
func (d *tarDataset) readAheadPerReader() int64 { return 2 * d.readAhead }

func (d *tarDataset) prefetch(part int) { d.pre.start(d.shards[part].Path) }

func (d *tarDataset) close() { d.pre.close() }

func (d *tarDataset) parts() int { return len(d.shards) }

func (d *tarDataset) open(part int, alloc allocator, skip func(int64) bool) partReader {
	opt := d.opt
	opt.Alloc, opt.Skip = alloc, skip
	s := d.shards[part]
	return tarshard.Open(s.Path, s.Number, opt)
}

type folderDataset struct {
	listing  *folder.Listing
	maxBytes int64
}

func (d *folderDataset) parts() int { return len(d.listing.Files) }

func (d *folderDataset) open(part int, alloc allocator, skip func(int64) bool) partReader {
	opt := folder.Options{Alloc: alloc, MaxFileBytes: d.maxBytes, Skip: skip}
	f := d.listing.Files[part]
	return &oneShot{read: func(ctx context.Context) (*pipeline.Item, error) { return d.listing.Read(ctx, f, opt) }}
}

type syntheticDataset struct {
	set   *synthetic.Set
	count int
}

func (d *syntheticDataset) parts() int { return d.count }

func (d *syntheticDataset) open(part int, alloc allocator, skip func(int64) bool) partReader {
	i := int64(part)
	return &oneShot{read: func(ctx context.Context) (*pipeline.Item, error) {
		return d.set.Read(ctx, i, alloc, skip != nil && skip(i))
	}}
}

// oneShot is a part of a single sample.
type oneShot struct {
	read func(ctx context.Context) (*pipeline.Item, error)
	done bool
}

func (o *oneShot) Next(ctx context.Context) (*pipeline.Item, error) {
	if o.done {
		return nil, io.EOF
	}
	o.done = true
	return o.read(ctx)
}

func (o *oneShot) Close() error { return nil }

// newDataset builds the dataset cfg names (cfg has its defaults).
func newDataset(cfg Config) (dataset, error) {
	switch {
	case cfg.Parquet != nil:
		return newParquetDataset(cfg)
	case len(cfg.Shards) > 0:
		store, err := objstore.NewStore(cfg.Remote)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		shards, err := store.Expand(context.Background(), cfg.Shards...)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		if len(shards) > 1<<31 {
			return nil, fmt.Errorf("source: %d shards: at most 2^31 fit in a sample index", len(shards))
		}
		var readAhead int64
		for _, s := range shards {
			if objstore.KindOf(s.Path) != objstore.KindLocal {
				readAhead = store.Config().MemoryPerObject()
			}
		}
		pre := newShardPrefetcher(store)
		return &tarDataset{shards: shards, readAhead: readAhead, pre: pre, opt: tarshard.Options{
			MaxMemberBytes: int64(cfg.MaxMemberBytes),
			LabelsOptional: cfg.Labels == LabelsOptional,
			ReadTimeout:    time.Duration(*cfg.ReadTimeout),
			ReadRetries:    *cfg.ReadRetries,
			OpenFile:       func(ctx context.Context, path string) (tarshard.File, error) { return pre.open(ctx, path) },
			ErrReason:      objstore.Reason,
		}}, nil
	case cfg.Folder != "":
		l, err := folder.Scan(cfg.Folder)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		return &folderDataset{listing: l, maxBytes: int64(cfg.MaxMemberBytes)}, nil
	default:
		set, err := synthetic.New(cfg.Synthetic.Width, cfg.Synthetic.Height)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		return &syntheticDataset{set: set, count: cfg.Synthetic.Count}, nil
	}
}
