package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// backend is one kind of remote object: it tells the object's size and version, and streams
// its bytes from an offset.
type backend interface {
	// stat returns the size (-1 when unknown, as for a pipe) and the ETag ("" when the server
	// gives none). A missing object wraps os.ErrNotExist.
	stat(ctx context.Context) (objectInfo, error)
	// get streams the object from off to its end; every answer is checked against want (a
	// different ETag or size is ErrChanged).
	get(ctx context.Context, off int64, want objectInfo) (io.ReadCloser, error)
	// resumable is false when get works only once, from offset 0 (a pipe).
	resumable() bool
}

type objectInfo struct {
	size int64
	etag string
}

// permanent marks an error that a retry cannot mend (403, 404, 412, a bad request).
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

func isPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p) || errors.Is(err, ErrChanged)
}

// chunk is a run of the object's bytes from offset off, or the error that ended the stream.
type chunk struct {
	off int64
	buf []byte
	err error
}

// object is an open remote object. Reads are served from the chunks its streamer goroutine
// reads ahead; a read at another offset than the stream's moves the stream there: forward by
// dropping the bytes between when they are near, else by a new range request.
type object struct {
	name string
	b    backend
	info objectInfo
	cfg  Config

	mu     sync.Mutex // serialises the readers (ReadAt may be called from several goroutines)
	pos    int64      // Read and Seek's offset
	cur    chunk      // the chunk being consumed (buf nil: none)
	stream *streamer
	closed bool
}

func openObject(ctx context.Context, name string, b backend, cfg Config) (*object, error) {
	var info objectInfo
	err := withRetries(ctx, cfg, func() error {
		var err error
		info, err = b.stat(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &object{name: name, b: b, info: info, cfg: cfg}, nil
}

// withRetries runs do until it succeeds, fails for good, or fails Retries+1 times.
func withRetries(ctx context.Context, cfg Config, do func() error) error {
	var err error
	for attempt := 0; ; attempt++ {
		if err = do(); err == nil || isPermanent(err) || ctx.Err() != nil {
			return err
		}
		if attempt == *cfg.Retries {
			return fmt.Errorf("%w after %d attempts: %w", ErrUnreachable, attempt+1, err)
		}
		if err := sleep(ctx, backoff(cfg, attempt)); err != nil {
			return err
		}
	}
}

// backoff is the wait before retry attempt+1: RetryBackoff doubled per attempt, at most 16 times.
func backoff(cfg Config, attempt int) time.Duration {
	return time.Duration(*cfg.RetryBackoff) << min(attempt, 4)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StartStreaming starts reading the object ahead from its start without waiting for it, so
// that a shard opened ahead of its turn has its first bytes in when the reader gets to it.
func (o *object) StartStreaming() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stream == nil && !o.closed {
		o.stream = startStreamer(o.name, o.b, o.info, o.cfg, 0)
		o.cur = chunk{off: 0}
	}
}

// BoundsReads tells tarshard that the object bounds its reads itself (Config.ReadTimeout, with
// resumes), so that its own stall guard does not stack a second timeout and a copy on top.
func (o *object) BoundsReads() {}

// Size is the object's size in bytes, -1 when unknown.
func (o *object) Size() int64 { return o.info.size }

func (o *object) Read(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.readAt(p, o.pos, false)
	o.pos += int64(n)
	return n, err
}

func (o *object) ReadAt(p []byte, off int64) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.readAt(p, off, true)
}

func (o *object) Seek(offset int64, whence int) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.pos
	case io.SeekEnd:
		if o.info.size < 0 {
			return o.pos, fmt.Errorf("%s: seek from the end of a stream of unknown size", o.name)
		}
		offset += o.info.size
	default:
		return o.pos, fmt.Errorf("%s: bad whence %d", o.name, whence)
	}
	if offset < 0 {
		return o.pos, fmt.Errorf("%s: negative seek", o.name)
	}
	o.pos = offset
	return offset, nil
}

// readAt copies the bytes at off into p: all of them when full, else at least one.
func (o *object) readAt(p []byte, off int64, full bool) (int, error) {
	if o.closed {
		return 0, fmt.Errorf("%s: read after close", o.name)
	}
	n := 0
	for n < len(p) {
		if o.info.size >= 0 && off >= o.info.size {
			return n, io.EOF
		}
		if err := o.seekStream(off); err != nil {
			return n, err
		}
		k := copy(p[n:], o.cur.buf[off-o.cur.off:])
		n += k
		off += int64(k)
		if !full && n > 0 {
			break
		}
	}
	return n, nil
}

// seekStream makes o.cur the chunk that holds off (or the error that ends the stream there).
func (o *object) seekStream(off int64) error {
	for {
		if o.cur.buf != nil && off >= o.cur.off && off < o.cur.off+int64(len(o.cur.buf)) {
			return nil
		}
		next := o.cur.off + int64(len(o.cur.buf)) // where the stream goes on
		if o.stream != nil && o.cur.err != nil && off == next {
			return o.cur.err
		}
		// Bytes within one read-ahead of the stream are nearer by reading on than by a new
		// request; a pipe can only read on.
		if o.stream != nil && o.cur.err == nil && off >= next && off-next <= int64(o.cfg.Prefetch) {
			o.stream.recycle(o.cur.buf)
			o.cur = o.stream.next(next)
			continue
		}
		if o.stream != nil && !o.b.resumable() {
			return fmt.Errorf("%s: a pipe reads forward only: cannot go to offset %d from %d", o.name, off, next)
		}
		if o.stream != nil {
			o.stream.stop()
		}
		o.stream = startStreamer(o.name, o.b, o.info, o.cfg, off)
		o.cur = chunk{off: off}
	}
}

// Close stops the streamer; it returns once the streamer's goroutine has ended.
func (o *object) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	if o.stream != nil {
		o.stream.stop()
		o.stream = nil
	}
	return nil
}

// streamer reads an object from an offset to its end into chunks, ahead of the consumer, with
// at most cfg.Buffers() buffers alive: free holds those no one uses.
type streamer struct {
	out    chan chunk
	free   chan []byte
	cancel context.CancelFunc
	done   chan struct{}
}

func startStreamer(name string, b backend, info objectInfo, cfg Config, from int64) *streamer {
	ctx, cancel := context.WithCancel(context.Background())
	n := cfg.Buffers()
	s := &streamer{
		out:    make(chan chunk, n-2), // the read-ahead; one buffer is being filled, one consumed
		free:   make(chan []byte, n),
		cancel: cancel, done: make(chan struct{}),
	}
	for range n {
		s.free <- nil // made at first use, so a short object costs little
	}
	go func() {
		defer close(s.done)
		defer close(s.out)
		r := &resumer{name: name, b: b, info: info, cfg: cfg, off: from}
		defer r.close()
		for {
			var buf []byte
			select {
			case buf = <-s.free:
			case <-ctx.Done():
				return
			}
			if buf == nil {
				buf = make([]byte, cfg.ChunkBytes)
			}
			off := r.off
			n, err := r.readFull(ctx, buf[:cap(buf)])
			if ctx.Err() != nil {
				return
			}
			select {
			case s.out <- chunk{off: off, buf: buf[:n:cap(buf)], err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

// next is the next chunk, which starts at off.
func (s *streamer) next(off int64) chunk {
	c, ok := <-s.out
	if !ok { // only after an error chunk, which the consumer stops at
		return chunk{off: off, err: io.ErrClosedPipe}
	}
	if len(c.buf) == 0 {
		s.recycle(c.buf)
		c.buf = nil
	}
	return c
}

// recycle gives a consumed buffer back to the streamer.
func (s *streamer) recycle(buf []byte) {
	if buf != nil {
		s.free <- buf[:0]
	}
}

func (s *streamer) stop() {
	s.cancel()
	<-s.done
	for range s.out { // the goroutine has ended: drop what it read ahead
	}
}

// resumer reads an object in sequence, resuming a cut stream with a new request at the first
// byte not yet received.
type resumer struct {
	name string
	b    backend
	info objectInfo
	cfg  Config
	off  int64 // next byte to read
	body io.ReadCloser

	fails    int  // requests or streams failed in a row without a byte received
	endEarly bool // one of those failures was an answer that ended before the object did
	timer    *time.Timer
}

// readFull fills buf from the stream, retrying across cuts; it returns io.EOF at the end of
// the object (with the bytes before it) and a permanent or exhausted-retries error otherwise.
func (r *resumer) readFull(ctx context.Context, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		if r.info.size >= 0 && r.off >= r.info.size {
			return n, io.EOF
		}
		if r.body == nil {
			if err := r.connect(ctx); err != nil {
				return n, err
			}
		}
		k, err := r.body.Read(buf[n:])
		n += k
		r.off += int64(k)
		if k > 0 {
			r.fails, r.endEarly = 0, false
			r.timer.Reset(time.Duration(*r.cfg.ReadTimeout))
		}
		if err == nil {
			continue
		}
		closeErr := r.body.Close()
		r.body = nil
		if err == io.EOF && r.info.size >= 0 && r.off >= r.info.size {
			return n, io.EOF // the last bytes came with the end of the answer
		}
		if err == io.EOF && r.info.size < 0 {
			// A stream of unknown length ends where it says; a pipe's exit status tells
			// whether that end is the real one.
			if closeErr != nil {
				return n, fmt.Errorf("%s after %d bytes: %w", r.name, r.off, closeErr)
			}
			return n, io.EOF
		}
		if err == io.EOF {
			// The server ended the answer before the object's end: a cut.
			err = fmt.Errorf("answer ended at byte %d of %d: %w", r.off, r.info.size, io.ErrUnexpectedEOF)
		}
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if !r.b.resumable() || isPermanent(err) {
			return n, fmt.Errorf("%s at byte %d: %w", r.name, r.off, err)
		}
		if err := r.failed(ctx, err); err != nil {
			return n, err
		}
	}
	return n, nil
}

// connect sends the request for the bytes from r.off on, retrying failed requests.
func (r *resumer) connect(ctx context.Context) error {
	for {
		if r.fails > 0 && !r.b.resumable() {
			return fmt.Errorf("%s: a pipe cannot be read again", r.name)
		}
		// A request context per answer, cancelled when the answer goes ReadTimeout without a
		// byte: that unblocks a stalled body read, which then counts as a cut.
		rctx, cancel := context.WithCancel(ctx)
		body, err := r.b.get(rctx, r.off, r.info)
		if err == nil {
			r.timer = time.AfterFunc(time.Duration(*r.cfg.ReadTimeout), cancel)
			r.body = &cancelOnClose{ReadCloser: body, cancel: cancel, timer: r.timer}
			return nil
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if isPermanent(err) {
			return fmt.Errorf("%s at byte %d: %w", r.name, r.off, err)
		}
		if err := r.failed(ctx, err); err != nil {
			return err
		}
	}
}

// failed counts one more failure in a row and waits the backoff, or gives up.
func (r *resumer) failed(ctx context.Context, err error) error {
	r.endEarly = r.endEarly || errors.Is(err, io.ErrUnexpectedEOF)
	if r.fails == *r.cfg.Retries {
		err = fmt.Errorf("%s at byte %d: %w after %d attempts: %w", r.name, r.off, ErrUnreachable, r.fails+1, err)
		if r.endEarly {
			// The object is served shorter than it is: a truncated shard, not a dead server.
			err = fmt.Errorf("%w: %w", io.ErrUnexpectedEOF, err)
		}
		return err
	}
	r.fails++
	return sleep(ctx, backoff(r.cfg, r.fails-1))
}

func (r *resumer) close() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
}

// cancelOnClose ends an answer's request context (and its stall timer) when the body closes.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
	timer  *time.Timer
}

func (c *cancelOnClose) Close() error {
	c.timer.Stop()
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
