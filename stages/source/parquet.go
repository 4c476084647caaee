package source

import (
	"context"
	"fmt"

	"pipeline/stages/objstore"
	"pipeline/stages/parquet"
)

// parquetDataset is a Parquet dataset whose parts are row groups.
type parquetDataset struct {
	ds             *parquet.Dataset
	labelsOptional bool
}

func newParquetDataset(cfg Config) (dataset, error) {
	store, err := objstore.NewStore(cfg.Remote)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	ds, err := parquet.Open(context.Background(), store, *cfg.Parquet)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	return &parquetDataset{ds: ds, labelsOptional: cfg.Labels == LabelsOptional}, nil
}

func (d *parquetDataset) parts() int { return d.ds.Parts() }

func (d *parquetDataset) open(part int, alloc allocator, skip func(int64) bool) partReader {
	return d.ds.Read(part, parquet.ReadOptions{Alloc: alloc, LabelsOptional: d.labelsOptional, Skip: skip})
}

// readAheadPerReader is the row group and read-ahead one reader holds, charged at Open.
func (d *parquetDataset) readAheadPerReader() int64 { return d.ds.BufferBytes() }
