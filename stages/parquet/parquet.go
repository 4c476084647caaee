// Package parquet reads image datasets stored as Parquet in Hugging Face's layout: an image
// struct column {bytes, path} (its name configurable: "image", "img"...) and an integer label
// column, in files that are local or remote (package objstore: s3://, http(s)://).
//
// A row group is one part: the parts are what the source shuffles and splits over ranks and
// readers, as tar shards are. Only the image's bytes leaf and the label column are read, with
// arrow-go's parquet/file and parquet/pqarrow. A row whose image bytes are null (Hugging Face
// writes path-only rows for images kept outside the file) or empty is a skipped sample with
// reason no_image or empty_member; bytes that do not decode are skipped by the decode stage as
// for tar shards.
//
// A sample's global index is part number << 32 | its row in the row group, where the part
// number counts the row groups of all files in order, so it is the same on every rank.
package parquet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"pipeline/pipeline"
	"pipeline/stages/objstore"
)

// Config is the source.parquet block.
//
//	source:
//	  parquet:
//	    files: [s3://bucket/data/train-*.parquet]   # patterns as for shards
//	    image_column: image                          # default "image"
//	    label_column: label                          # default "label"
type Config struct {
	Files       []string `yaml:"files"`
	ImageColumn string   `yaml:"image_column"`
	LabelColumn string   `yaml:"label_column"`
}

// Defaults of Config.
const (
	DefaultImageColumn = "image"
	DefaultLabelColumn = "label"
)

// batchRows is how many rows one record of the record reader holds.
const batchRows = 32

// Allocator hands out encoded-byte buffers; *pipeline.Account is one.
type Allocator interface {
	Alloc(ctx context.Context, it *pipeline.Item, n int) ([]byte, error)
}

// Dataset is the row groups of a list of Parquet files.
type Dataset struct {
	cfg   Config
	store *objstore.Store
	files []fileInfo
	parts []part
	// maxRowGroupBytes is the most one reader holds for a row group: its needed column
	// chunks compressed and decoded (the record reader keeps both), largest row group.
	maxRowGroupBytes int64
}

type fileInfo struct {
	name             string
	imageLeaf, label int // leaf column indices
}

type part struct {
	file, rowGroup int
	rows           int64
}

// Open lists the files, reads their footers and checks their columns.
func Open(ctx context.Context, store *objstore.Store, cfg Config) (*Dataset, error) {
	if cfg.ImageColumn == "" {
		cfg.ImageColumn = DefaultImageColumn
	}
	if cfg.LabelColumn == "" {
		cfg.LabelColumn = DefaultLabelColumn
	}
	if len(cfg.Files) == 0 {
		return nil, errors.New("parquet: files names no file")
	}
	list, err := store.Expand(ctx, cfg.Files...)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	d := &Dataset{cfg: cfg, store: store}
	for i, s := range list {
		if err := d.addFile(ctx, i, s.Path); err != nil {
			return nil, err
		}
	}
	if len(d.parts) > 1<<31 {
		return nil, fmt.Errorf("parquet: %d row groups: at most 2^31 fit in a sample index", len(d.parts))
	}
	return d, nil
}

func (d *Dataset) addFile(ctx context.Context, number int, name string) error {
	f, err := d.store.Open(ctx, name)
	if err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	rdr, err := file.NewParquetReader(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("parquet: %s: %w", name, err)
	}
	defer rdr.Close() // closes f too
	md := rdr.MetaData()
	fi := fileInfo{name: name}
	if fi.imageLeaf, err = leaf(md.Schema.ColumnIndexByName(d.cfg.ImageColumn+".bytes"), name, "image_column "+d.cfg.ImageColumn+" (a struct with a bytes field)"); err != nil {
		return err
	}
	if fi.label, err = leaf(md.Schema.ColumnIndexByName(d.cfg.LabelColumn), name, "label_column "+d.cfg.LabelColumn); err != nil {
		return err
	}
	switch t := md.Schema.Column(fi.label).PhysicalType(); t {
	case pq.Types.Int32, pq.Types.Int64:
	default:
		return fmt.Errorf("parquet: %s: label_column %s is %s, want an integer", name, d.cfg.LabelColumn, t)
	}
	d.files = append(d.files, fi)
	for rg := 0; rg < md.NumRowGroups(); rg++ {
		g := md.RowGroup(rg)
		var held int64
		for _, c := range []int{fi.imageLeaf, fi.label} {
			cc, err := g.ColumnChunk(c)
			if err != nil {
				return fmt.Errorf("parquet: %s: row group %d: %w", name, rg, err)
			}
			held += cc.TotalCompressedSize() + cc.TotalUncompressedSize()
		}
		d.maxRowGroupBytes = max(d.maxRowGroupBytes, held)
		d.parts = append(d.parts, part{file: number, rowGroup: rg, rows: g.NumRows()})
	}
	return nil
}

func leaf(i int, file, what string) (int, error) {
	if i < 0 {
		return 0, fmt.Errorf("parquet: %s has no column for %s", file, what)
	}
	return i, nil
}

// Parts is the number of row groups of all files.
func (d *Dataset) Parts() int { return len(d.parts) }

// BufferBytes is the most one reader holds besides its samples: the largest row group's
// needed columns, compressed and decoded, and the read-ahead of a remote file.
func (d *Dataset) BufferBytes() int64 {
	n := d.maxRowGroupBytes
	for _, f := range d.files {
		if objstore.KindOf(f.name) != objstore.KindLocal {
			return n + d.store.Config().MemoryPerObject()
		}
	}
	return n
}

// ReadOptions says how a part is read.
type ReadOptions struct {
	Alloc          Allocator
	LabelsOptional bool                   // a null label gives -1 instead of no_label
	Skip           func(index int64) bool // true: leave the image bytes unread (exact resume)
}

// Index is the global index of row row of part number.
func Index(part int, row int64) int64 { return int64(part)<<32 | row }

// Read returns a reader of part; it opens the file at the first Next.
func (d *Dataset) Read(partNumber int, opt ReadOptions) *Reader {
	return &Reader{d: d, number: partNumber, p: d.parts[partNumber], opt: opt}
}

// Reader yields the rows of one row group.
type Reader struct {
	d      *Dataset
	number int
	p      part
	opt    ReadOptions

	f    objstore.File
	pf   *file.Reader
	rr   pqarrow.RecordReader
	rec  arrow.RecordBatch
	row  int   // next row of rec
	seen int64 // rows of the row group yielded so far
	done bool
}

// ReasonUnreadable is a file or row group that cannot be read.
const ReasonUnreadable = "unreadable_parquet"

// Next returns the next sample, a *pipeline.SampleError for a bad row, a *pipeline.ShardError
// when the file or row group cannot be read (then io.EOF), or io.EOF after the last row.
func (r *Reader) Next(ctx context.Context) (*pipeline.Item, error) {
	if r.done {
		return nil, io.EOF
	}
	if r.rr == nil {
		if err := r.open(ctx); err != nil {
			r.done = true
			return nil, r.shardError(ctx, err)
		}
	}
	for r.rec == nil || r.row >= int(r.rec.NumRows()) {
		r.rec = nil
		if !r.rr.Next() {
			r.done = true
			if err := r.rr.Err(); err != nil && !errors.Is(err, io.EOF) {
				return nil, r.shardError(ctx, err)
			}
			if r.seen != r.p.rows {
				return nil, r.shardError(ctx, fmt.Errorf("%d rows read of the %d the footer gives: %w", r.seen, r.p.rows, io.ErrUnexpectedEOF))
			}
			return nil, io.EOF
		}
		r.rec, r.row = r.rr.RecordBatch(), 0
	}
	return r.sample(ctx)
}

func (r *Reader) sample(ctx context.Context) (*pipeline.Item, error) {
	fi := r.d.files[r.p.file]
	i := r.row
	r.row++
	meta := pipeline.Meta{
		Key:   fmt.Sprintf("%s/%d/%d", path.Base(fi.name), r.p.rowGroup, r.seen),
		Shard: fi.name,
		Index: Index(r.number, r.seen),
	}
	r.seen++
	images, bytesCol, labels, err := r.columns()
	if err != nil {
		return nil, r.shardError(ctx, err)
	}
	label, hasLabel, err := labelAt(labels, i)
	if err != nil {
		return nil, r.shardError(ctx, err)
	}
	switch {
	case images.IsNull(i) || bytesCol.IsNull(i):
		return nil, pipeline.Badf(meta, pipeline.ReasonNoImage, "row has no image bytes (null %s.bytes)", r.d.cfg.ImageColumn)
	case bytesCol.ValueLen(i) == 0:
		return nil, pipeline.Badf(meta, pipeline.ReasonEmpty, "row's %s.bytes is empty", r.d.cfg.ImageColumn)
	case !hasLabel && !r.opt.LabelsOptional:
		return nil, pipeline.Badf(meta, pipeline.ReasonNoLabel, "row's %s is null", r.d.cfg.LabelColumn)
	case hasLabel && label < 0:
		return nil, pipeline.Badf(meta, pipeline.ReasonBadLabel, "label %d is negative", label)
	}
	meta.Label = -1
	if hasLabel {
		meta.Label = int32(label)
	}
	it := &pipeline.Item{Meta: meta}
	if r.opt.Skip != nil && r.opt.Skip(meta.Index) {
		return it, nil
	}
	src := bytesCol.Value(i) // aliases the record's buffer, which the next record reuses
	buf, err := r.opt.Alloc.Alloc(ctx, it, len(src))
	if err != nil {
		return nil, fmt.Errorf("parquet %s: sample %s: %w", fi.name, meta.Key, err)
	}
	copy(buf, src)
	it.Encoded = buf
	return it, nil
}

// columns finds the image struct, its bytes and the labels in the record by name.
func (r *Reader) columns() (*array.Struct, *array.Binary, arrow.Array, error) {
	col := func(name string) (arrow.Array, error) {
		idx := r.rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("the record read has no column %s", name)
		}
		return r.rec.Column(idx[0]), nil
	}
	img, err := col(r.d.cfg.ImageColumn)
	if err != nil {
		return nil, nil, nil, err
	}
	labels, err := col(r.d.cfg.LabelColumn)
	if err != nil {
		return nil, nil, nil, err
	}
	images, ok := img.(*array.Struct)
	if !ok {
		return nil, nil, nil, fmt.Errorf("image_column %s is %s, want a struct", r.d.cfg.ImageColumn, img.DataType())
	}
	st := images.DataType().(*arrow.StructType)
	k, ok := st.FieldIdx("bytes")
	if !ok {
		return nil, nil, nil, fmt.Errorf("image_column %s has no bytes field", r.d.cfg.ImageColumn)
	}
	bytesCol, ok := images.Field(k).(*array.Binary)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%s.bytes is %s, want binary", r.d.cfg.ImageColumn, images.Field(k).DataType())
	}
	return images, bytesCol, labels, nil
}

func labelAt(col arrow.Array, i int) (int64, bool, error) {
	if col.IsNull(i) {
		return 0, false, nil
	}
	switch c := col.(type) {
	case *array.Int64:
		return c.Value(i), true, nil
	case *array.Int32:
		return int64(c.Value(i)), true, nil
	}
	return 0, false, fmt.Errorf("label column is %s, want an integer", col.DataType())
}

func (r *Reader) open(ctx context.Context) error {
	fi := r.d.files[r.p.file]
	f, err := r.d.store.Open(ctx, fi.name)
	if err != nil {
		return err
	}
	r.f = f
	props := pq.NewReaderProperties(memory.DefaultAllocator)
	props.BufferedStreamEnabled = false // one ReadAt per column chunk: one range request
	if r.pf, err = file.NewParquetReader(f, file.WithReadProps(props)); err != nil {
		return err
	}
	fr, err := pqarrow.NewFileReader(r.pf, pqarrow.ArrowReadProperties{BatchSize: batchRows}, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	r.rr, err = fr.GetRecordReader(ctx, []int{fi.imageLeaf, fi.label}, []int{r.p.rowGroup})
	return err
}

func (r *Reader) shardError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.done = true
	reason := ReasonUnreadable
	switch {
	case errors.Is(err, os.ErrNotExist):
		reason = "missing_shard"
	case objstore.Reason(err) != "":
		reason = objstore.Reason(err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		reason = "truncated_shard"
	}
	return &pipeline.ShardError{Shard: r.d.files[r.p.file].name, Reason: reason,
		Err: fmt.Errorf("row group %d after %d rows: %w", r.p.rowGroup, r.seen, err)}
}

// Close releases the row group's buffers and closes the file.
func (r *Reader) Close() error {
	r.done = true
	if r.rr != nil {
		r.rr.Release()
		r.rr = nil
	}
	if r.pf != nil {
		r.pf.Close() // closes f too
		r.pf, r.f = nil, nil
	}
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	return nil
}
