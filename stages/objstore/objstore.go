// Package objstore opens shards that live outside the local filesystem: objects in S3 or any
// S3-compatible store (s3://bucket/key), files on a web server (http:// and https://), and the
// standard output of a command (WebDataset's pipe:COMMAND). Local paths pass through to the OS.
//
// A remote object is streamed, not downloaded: one GET from the reader's offset to the end,
// read ahead into a fixed set of chunk buffers (Config.Prefetch bytes) by one goroutine per
// open object, so the network is busy while the consumer decodes. When the connection is cut,
// a read stalls for Config.ReadTimeout, or the server answers 5xx, the stream resumes with a
// range request from the first byte not yet received, after a backoff that doubles from
// Config.RetryBackoff, at most Config.Retries times in a row without progress. Every answer
// must carry the ETag (and size) seen when the object was opened, so an object replaced while
// it is read is an error (ErrChanged), never a mix of two versions. An object that does not
// exist wraps os.ErrNotExist, as a missing local file does.
//
// A pipe: stream cannot be re-requested: it reads forward only and any fault ends it.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"pipeline/pipeline/config"
)

// Config is the source.remote block: how remote shards and Parquet files are read. Every key is
// optional. S3 credentials, region and endpoint come from the usual AWS environment variables
// and files (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
// ~/.aws/config...), read by the AWS SDK itself; the keys here override them.
type Config struct {
	// Endpoint is the S3 endpoint URL ("http://127.0.0.1:7070") of an S3-compatible store.
	Endpoint string `yaml:"endpoint"`
	Region   string `yaml:"region"`
	Profile  string `yaml:"profile"` // a profile of the AWS config and credentials files
	// PathStyle addresses buckets as endpoint/bucket/key instead of bucket.endpoint/key;
	// default true when a custom endpoint is set (from here or the environment), else false.
	PathStyle *bool `yaml:"path_style"`
	// Retries is how many times in a row a failed request or cut stream is retried without
	// receiving a byte in between (default 5); RetryBackoff is the first wait, doubled at each
	// retry up to 16 times it (default 200ms).
	Retries      *int             `yaml:"retries"`
	RetryBackoff *config.Duration `yaml:"retry_backoff"`
	// ReadTimeout is how long a stream may go without delivering a byte before it is cut and
	// resumed (default 30s).
	ReadTimeout *config.Duration `yaml:"read_timeout"`
	// Prefetch is the read-ahead of one open object, in bytes (default 8MiB), held in
	// ChunkBytes-sized buffers (default 1MiB). Each reader holds two open objects (the shard it
	// reads and the next one, opened ahead), charged to the encoded share of memory_budget.
	Prefetch   config.ByteSize `yaml:"prefetch"`
	ChunkBytes config.ByteSize `yaml:"chunk_bytes"`
}

// Defaults of Config.
const (
	DefaultRetries      = 5
	DefaultRetryBackoff = 200 * time.Millisecond
	DefaultReadTimeout  = 30 * time.Second
	DefaultPrefetch     = 8 << 20
	DefaultChunkBytes   = 1 << 20
)

// WithDefaults fills in the unset keys and checks the others.
func (c Config) WithDefaults() (Config, error) {
	if c.Retries == nil {
		c.Retries = ptrTo(DefaultRetries)
	}
	if c.RetryBackoff == nil {
		c.RetryBackoff = ptrTo(config.Duration(DefaultRetryBackoff))
	}
	if c.ReadTimeout == nil {
		c.ReadTimeout = ptrTo(config.Duration(DefaultReadTimeout))
	}
	if c.Prefetch == 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.ChunkBytes == 0 {
		c.ChunkBytes = DefaultChunkBytes
	}
	if *c.Retries < 0 || *c.RetryBackoff < 0 || *c.ReadTimeout <= 0 || c.Prefetch < 0 || c.ChunkBytes < 0 {
		return c, errors.New("remote: retries and retry_backoff cannot be negative, read_timeout, prefetch and chunk_bytes must be positive")
	}
	if c.Prefetch < c.ChunkBytes {
		return c, fmt.Errorf("remote: prefetch %d is less than one chunk (chunk_bytes %d)", c.Prefetch, c.ChunkBytes)
	}
	return c, nil
}

// Buffers is how many chunk buffers one open object holds at most: the read-ahead, the one
// being filled and the one the consumer reads.
func (c Config) Buffers() int { return int(c.Prefetch/c.ChunkBytes) + 2 }

// MemoryPerObject is the most one open object holds in buffers, in bytes.
func (c Config) MemoryPerObject() int64 { return int64(c.Buffers()) * int64(c.ChunkBytes) }

// Errors of remote reads; the reasons of the shard errors they end in.
var (
	// ErrChanged is an object whose ETag or size changed while it was read.
	ErrChanged = errors.New("object changed while it was read")
	// ErrUnreachable is an object whose requests kept failing, retries included.
	ErrUnreachable = errors.New("object unreachable")
)

// Shard error reasons for remote faults (a missing object is tarshard's missing_shard; a cut
// that retries could not mend, truncated_shard).
const (
	ReasonChanged     = "changed_shard"
	ReasonUnreachable = "unreachable_shard"
)

// Reason is the shard error reason err calls for, or "" when it is none of the remote ones. An
// object that kept ending early is left to the caller's truncated reason.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrChanged):
		return ReasonChanged
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ""
	case errors.Is(err, ErrUnreachable):
		return ReasonUnreachable
	}
	return ""
}

// Kind of a shard name.
const (
	KindLocal = "local"
	KindS3    = "s3"
	KindHTTP  = "http"
	KindPipe  = "pipe"
)

// KindOf tells what a shard name is: an s3:// or http(s):// URL, a pipe:COMMAND, or a path.
func KindOf(name string) string {
	switch {
	case strings.HasPrefix(name, "s3://"):
		return KindS3
	case strings.HasPrefix(name, "http://"), strings.HasPrefix(name, "https://"):
		return KindHTTP
	case strings.HasPrefix(name, "pipe:"):
		return KindPipe
	}
	return KindLocal
}

// File is an open shard or Parquet file: read in sequence (Read, Seek) or at offsets (ReadAt).
type File interface {
	io.ReaderAt
	io.ReadSeeker
	io.Closer
}

// Store opens names of every kind with one Config; it is safe for concurrent use. The S3
// client is made at the first s3:// name.
type Store struct {
	cfg  Config
	s3   lazyS3
	http *httpBackendFactory
}

// NewStore makes a store; cfg gets its defaults.
func NewStore(cfg Config) (*Store, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	return &Store{cfg: cfg, s3: lazyS3{cfg: cfg}, http: newHTTPBackendFactory(cfg)}, nil
}

// Config is the store's config with its defaults.
func (s *Store) Config() Config { return s.cfg }

// Open opens name for reading: it asks for the object's size and ETag (a missing object wraps
// os.ErrNotExist) and starts streaming it at the first read.
func (s *Store) Open(ctx context.Context, name string) (File, error) {
	var b backend
	switch KindOf(name) {
	case KindLocal:
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		return f, nil
	case KindPipe:
		b = &pipeBackend{command: strings.TrimPrefix(name, "pipe:")}
	case KindHTTP:
		b = s.http.backend(name)
	case KindS3:
		c, err := s.s3.client(ctx)
		if err != nil {
			return nil, err
		}
		bucket, key, err := splitS3(name)
		if err != nil {
			return nil, err
		}
		b = &s3Backend{c: c, bucket: bucket, key: key}
	}
	o, err := openObject(ctx, name, b, s.cfg)
	if err != nil {
		return nil, err
	}
	return o, nil
}

func ptrTo[T any](v T) *T { return &v }
