// Package tarshard reads WebDataset-style tar shards, plain or gzip-compressed, one sample at a
// time.
//
// A sample is a run of adjacent members sharing a key: the member name without the extension
// that starts at the first dot of its base name ("a/000123.jpg" and "a/000123.cls" form sample
// "a/000123"). The image is the member with extension .jpg, .jpeg or .png (any case); the label
// is a .cls member (an integer in text) or a .json member ({"label": N} or {"cls": N}); .cls
// wins when both exist. Other members are skipped unread. Member names are only ever used as
// keys: nothing is written or opened from them, so "../../etc/x.jpg" is just the key
// "../../etc/x".
//
// A shard cut short (a copy that stopped, a full disk) is reported as a truncated_shard error
// once the cut is found; the samples before it count and the sample being read at the cut is
// dropped. A cut that falls exactly between two members is caught too: a complete archive ends
// with two zero blocks, and an archive that ends with one is taken for a truncated one.
//
// A read of the file that does not return within Options.ReadTimeout is retried
// Options.ReadRetries times; then the shard fails with a stalled_shard error.
//
// A sample's global index is shard number << 32 | its position in the shard (counting every
// sample, bad ones too), so it is the same in every run and on every rank.
package tarshard

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"pipeline/pipeline"
)

// DefaultMaxMemberBytes is the largest image member read when Options.MaxMemberBytes is 0.
const DefaultMaxMemberBytes = 64 << 20

// maxLabelBytes bounds a label member; a label is a short number.
const maxLabelBytes = 4 << 10

// Shard error reasons (pipeline.ShardError.Reason).
const (
	ReasonMissing    = "missing_shard"
	ReasonTruncated  = "truncated_shard"
	ReasonUnreadable = "unreadable_shard"
	ReasonStalled    = "stalled_shard" // a read did not return within the read timeout, retries included
)

// Allocator hands out the buffers for encoded bytes; *pipeline.Account is one.
type Allocator interface {
	Alloc(ctx context.Context, it *pipeline.Item, n int) ([]byte, error)
}

// Options says how to read a shard.
type Options struct {
	Alloc          Allocator // where image bytes go; needed unless Skip is true for every sample
	MaxMemberBytes int64     // image members larger than this are refused unread (ReasonTooLarge)
	LabelsOptional bool      // a sample without a label gets label -1 instead of ReasonNoLabel
	// Skip, when it returns true for a sample's index, leaves the image unread: the sample is
	// still yielded, with every check that needs no image bytes, but Encoded stays nil. Exact
	// resume uses it to replay samples that were already delivered.
	Skip func(index int64) bool
	// ReadTimeout bounds every read of the file (0: reads may block forever). A read that
	// times out is sent again from the same offset, ReadRetries times at most; then the shard
	// fails with ReasonStalled.
	ReadTimeout time.Duration
	ReadRetries int

	// OpenFile, when set, opens shards instead of os.Open (package objstore opens s3://,
	// http(s):// and pipe: names); an error wrapping os.ErrNotExist is a missing shard.
	// ErrReason, when set, names the shard error reason of its files' errors ("" leaves
	// tarshard's own).
	OpenFile  func(ctx context.Context, path string) (File, error)
	ErrReason func(err error) string

	openFile func(path string) (shardFile, error) // tests stand in a file that stalls
}

// File is an open shard as OpenFile returns it.
type File = shardFile

// shardFile is what a Reader needs of an open shard.
type shardFile interface {
	io.ReaderAt
	io.ReadSeeker
	io.Closer
}

func openOSFile(path string) (shardFile, error) { return os.Open(path) }

// Reader yields the samples of one shard. It opens the file at the first Next.
type Reader struct {
	path   string
	number int
	opt    Options

	file    shardFile
	guard   *stallGuard // nil without a read timeout
	end     *endTracker
	tr      *tar.Reader
	pending *tar.Header // read already; the first member of the next sample
	pos     int64       // samples started so far
	done    bool
}

// Open returns a reader of the shard at path, whose number in the shard list is number.
func Open(path string, number int, opt Options) *Reader {
	if opt.MaxMemberBytes <= 0 {
		opt.MaxMemberBytes = DefaultMaxMemberBytes
	}
	if opt.openFile == nil {
		opt.openFile = openOSFile
	}
	return &Reader{path: path, number: number, opt: opt}
}

// Index is the global index of the sample at position pos of shard number.
func Index(number int, pos int64) int64 { return int64(number)<<32 | pos }

// sample collects the members of one sample.
type sample struct {
	item      *pipeline.Item
	hasImage  bool
	cls, json *int32
	bad       *pipeline.SampleError // the first problem found; reported when the sample ends
}

// Next returns the next sample, a *pipeline.SampleError for a bad one, a *pipeline.ShardError
// when the shard is missing, unreadable or cut short (after which it returns io.EOF), or io.EOF
// after the last sample.
func (r *Reader) Next(ctx context.Context) (*pipeline.Item, error) {
	if r.done {
		return nil, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.tr == nil {
		if err := r.open(ctx); err != nil {
			r.done = true
			return nil, r.orCancelled(ctx, err)
		}
	}
	if r.guard != nil {
		r.guard.ctx = ctx
	}
	var s *sample
	for {
		hdr := r.pending
		r.pending = nil
		if hdr == nil {
			var err error
			hdr, err = r.tr.Next()
			if err == io.EOF && r.end.pastEnd {
				// tar.Reader ends quietly when the file stops at a block boundary; a complete
				// archive ends with two zero blocks and never needs a read past its end.
				err = fmt.Errorf("the archive ends without its end-of-archive blocks: %w", io.ErrUnexpectedEOF)
			}
			if err == io.EOF {
				r.done = true
				if s == nil {
					return nil, io.EOF
				}
				return r.finish(s)
			}
			if err != nil {
				r.done = true
				s.release()
				return nil, r.orCancelled(ctx, r.shardError("reading member header", err))
			}
		}
		if hdr.Typeflag != tar.TypeReg {
			continue // directories, links and the like are never followed
		}
		key, ext := SplitName(hdr.Name)
		if s != nil && key != s.item.Key {
			r.pending = hdr
			return r.finish(s)
		}
		if s == nil {
			meta := pipeline.Meta{Key: key, Shard: r.path, Index: Index(r.number, r.pos)}
			r.pos++
			s = &sample{item: &pipeline.Item{Meta: meta}}
		}
		if err := r.member(ctx, s, hdr, ext); err != nil {
			r.done = true
			s.release()
			return nil, r.orCancelled(ctx, err)
		}
	}
}

// member takes in one member of sample s. Problems with the sample are noted in s; an error
// return means the shard cannot be read on.
func (r *Reader) member(ctx context.Context, s *sample, hdr *tar.Header, ext string) error {
	meta := s.item.Meta
	switch ext {
	case "jpg", "jpeg", "png":
		if s.hasImage || s.bad != nil {
			return nil // the first image is the sample's; later ones are skipped unread
		}
		s.hasImage = true
		switch {
		case hdr.Size == 0:
			s.bad = pipeline.Badf(meta, pipeline.ReasonEmpty, "image member %s is empty", hdr.Name)
		case hdr.Size > r.opt.MaxMemberBytes:
			s.bad = pipeline.Badf(meta, pipeline.ReasonTooLarge, "image member %s has %d bytes, more than max_member_bytes %d",
				hdr.Name, hdr.Size, r.opt.MaxMemberBytes)
		case r.opt.Skip != nil && r.opt.Skip(meta.Index):
		default:
			buf, err := r.opt.Alloc.Alloc(ctx, s.item, int(hdr.Size))
			if err != nil {
				return fmt.Errorf("shard %s: sample %s: %w", r.path, meta.Key, err)
			}
			if _, err := io.ReadFull(r.tr, buf); err != nil {
				return r.shardError("reading "+hdr.Name, err)
			}
			s.item.Encoded = buf
		}
	case "cls", "json":
		if hdr.Size > maxLabelBytes {
			s.noteBad(pipeline.Badf(meta, pipeline.ReasonBadLabel, "label member %s has %d bytes", hdr.Name, hdr.Size))
			return nil
		}
		text, err := io.ReadAll(r.tr)
		if err != nil {
			return r.shardError("reading "+hdr.Name, err)
		}
		var label *int32
		if ext == "cls" {
			label, err = parseCls(text)
		} else {
			label, err = parseJSON(text)
		}
		if err != nil {
			s.noteBad(pipeline.Bad(meta, pipeline.ReasonBadLabel, fmt.Errorf("%s: %w", hdr.Name, err)))
		} else if ext == "cls" && s.cls == nil {
			s.cls = label
		} else if ext == "json" && s.json == nil {
			s.json = label
		}
	}
	return nil
}

// finish turns a complete sample into an item or the first problem found in it.
func (r *Reader) finish(s *sample) (*pipeline.Item, error) {
	meta := s.item.Meta
	label := s.cls
	if label == nil {
		label = s.json
	}
	var bad *pipeline.SampleError
	switch {
	case s.bad != nil:
		bad = s.bad
	case !s.hasImage:
		bad = pipeline.Badf(meta, pipeline.ReasonNoImage, "no .jpg, .jpeg or .png member")
	case label == nil && !r.opt.LabelsOptional:
		bad = pipeline.Badf(meta, pipeline.ReasonNoLabel, "no .cls or .json label member")
	}
	if bad != nil {
		s.release()
		return nil, bad
	}
	s.item.Label = -1
	if label != nil {
		s.item.Label = *label
	}
	return s.item, nil
}

func (s *sample) noteBad(e *pipeline.SampleError) {
	if s.bad == nil {
		s.bad = e
	}
}

func (s *sample) release() {
	if s != nil {
		s.item.Release()
	}
}

// orCancelled reports a run that was stopped as such, rather than as a fault of the shard.
func (r *Reader) orCancelled(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// open opens the file and sniffs gzip by its magic bytes.
func (r *Reader) open(ctx context.Context) error {
	open := r.opt.openFile
	if r.opt.OpenFile != nil {
		open = func(path string) (shardFile, error) { return r.opt.OpenFile(ctx, path) }
	}
	f, err := open(r.path)
	if err != nil {
		reason := ReasonUnreadable
		if errors.Is(err, os.ErrNotExist) {
			reason = ReasonMissing
		} else if r.opt.ErrReason != nil && r.opt.ErrReason(err) != "" {
			reason = r.opt.ErrReason(err)
		}
		return &pipeline.ShardError{Shard: r.path, Reason: reason, Err: err}
	}
	r.file = f
	// file is what the archive is read from: the file itself, or a guard that bounds each read.
	var file io.ReadSeeker = f
	// A remote file (package objstore) bounds and retries its own reads.
	if _, selfBounded := f.(interface{ BoundsReads() }); r.opt.ReadTimeout > 0 && !selfBounded {
		r.guard = &stallGuard{f: f, timeout: r.opt.ReadTimeout, retries: max(0, r.opt.ReadRetries), ctx: ctx}
		file = r.guard
	}
	var magic [2]byte
	n, err := io.ReadFull(file, magic[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return r.shardError("reading", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return r.shardError("reading", err)
	}
	if n == 2 && magic == [2]byte{0x1f, 0x8b} {
		gz, err := gzip.NewReader(bufio.NewReaderSize(file, 256<<10))
		if err != nil {
			return r.shardError("opening gzip stream", err)
		}
		r.end = &endTracker{r: gz}
		r.tr = tar.NewReader(r.end)
		return nil
	}
	// A plain tar reads from the file itself, seekable: tar.Reader then seeks over the members
	// it skips instead of reading them.
	r.end = &endTracker{r: file}
	r.tr = tar.NewReader(seekingTracker{r.end, file})
	return nil
}

// endTracker notes a read attempted past the end of the stream, which a complete archive never
// needs.
type endTracker struct {
	r       io.Reader
	pastEnd bool
}

func (t *endTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n == 0 && err == io.EOF && len(p) > 0 {
		t.pastEnd = true
	}
	return n, err
}

// seekingTracker is an endTracker over a file, which keeps the file's Seek.
type seekingTracker struct {
	*endTracker
	io.Seeker
}

func (r *Reader) shardError(doing string, err error) *pipeline.ShardError {
	reason := ReasonUnreadable
	switch {
	case r.opt.ErrReason != nil && r.opt.ErrReason(err) != "":
		reason = r.opt.ErrReason(err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		reason = ReasonTruncated
	case errors.Is(err, ErrStalled):
		reason = ReasonStalled
	}
	return &pipeline.ShardError{Shard: r.path, Reason: reason,
		Err: fmt.Errorf("%s after %d samples: %w", doing, r.pos, err)}
}

// Close closes the file. It does not release a sample already returned.
func (r *Reader) Close() error {
	r.done = true
	if r.file == nil {
		return nil
	}
	err := r.file.Close()
	r.file = nil
	return err
}

// SplitName splits a member name into the sample key and the lower-case extension: the key
// ends at the first dot of the base name. A leading "./" is dropped.
func SplitName(name string) (key, ext string) {
	name = strings.TrimPrefix(name, "./")
	dir, base := path.Split(name)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		return dir + base[:i], strings.ToLower(base[i+1:])
	}
	return name, ""
}

func parseCls(text []byte) (*int32, error) {
	s := strings.TrimSpace(string(text))
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("class %q is not an integer", s)
	}
	return checkLabel(v)
}

func parseJSON(text []byte) (*int32, error) {
	var doc struct {
		Label *json.Number `json:"label"`
		Cls   *json.Number `json:"cls"`
	}
	if err := json.Unmarshal(text, &doc); err != nil {
		return nil, fmt.Errorf("label json: %w", err)
	}
	num := doc.Label
	if num == nil {
		num = doc.Cls
	}
	if num == nil {
		return nil, errors.New(`label json has neither "label" nor "cls"`)
	}
	v, err := strconv.ParseInt(num.String(), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("label %s is not an integer", num)
	}
	return checkLabel(v)
}

func checkLabel(v int64) (*int32, error) {
	if v < 0 {
		return nil, fmt.Errorf("label %d is negative", v)
	}
	l := int32(v)
	return &l, nil
}
