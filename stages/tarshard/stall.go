package tarshard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrStalled is a read of a shard that did not return within the read timeout, retries
// included: a hung network filesystem, a dead disk.
var ErrStalled = errors.New("read stalled")

// maxGuardedRead bounds one guarded read, so that the buffer an abandoned read still owns
// stays small.
const maxGuardedRead = 1 << 20

// stallGuard reads a file sequentially with positioned reads, each bounded by a timeout. A
// read that times out is retried from the same offset (a new positioned read, so a request
// lost by a network filesystem is sent again) up to retries times; the first attempt to
// answer wins. A read that never returns cannot be interrupted: its goroutine is abandoned
// with its own buffer and ends when the read finally does.
type stallGuard struct {
	f       io.ReaderAt
	off     int64
	timeout time.Duration
	retries int
	ctx     context.Context // the context of the Next call in progress
	spare   []byte          // a buffer no abandoned read owns
}

type guardedRead struct {
	buf []byte
	n   int
	err error
}

func (g *stallGuard) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	want := min(len(p), maxGuardedRead)
	// Every attempt sends into results, which has room for all of them: a late answer from an
	// abandoned attempt never blocks its goroutine.
	results := make(chan guardedRead, g.retries+1)
	start := func() {
		buf := g.spare
		g.spare = nil
		if cap(buf) < want {
			buf = make([]byte, want)
		}
		buf = buf[:want]
		off := g.off
		go func() {
			n, err := g.f.ReadAt(buf, off)
			results <- guardedRead{buf, n, err}
		}()
	}
	start()
	timer := time.NewTimer(g.timeout)
	defer timer.Stop()
	for attempt := 0; ; {
		select {
		case r := <-results:
			n := copy(p, r.buf[:r.n])
			g.off += int64(n)
			if attempt == 0 {
				g.spare = r.buf // no other attempt was started, so nothing else writes to it
			}
			if r.err == io.EOF && n > 0 {
				r.err = nil // io.Reader: report the bytes now and io.EOF on the next call
			}
			return n, r.err
		case <-timer.C:
			if attempt == g.retries {
				return 0, fmt.Errorf("%w: no answer to a %d-byte read at offset %d within %v, %d attempts",
					ErrStalled, want, g.off, g.timeout, attempt+1)
			}
			attempt++
			start()
			timer.Reset(g.timeout)
		case <-g.ctx.Done():
			return 0, g.ctx.Err()
		}
	}
}

// Seek moves the offset (tar.Reader seeks over the members it skips).
func (g *stallGuard) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += g.off
	default:
		return g.off, errors.New("tarshard: seek from the end is not supported")
	}
	if offset < 0 {
		return g.off, errors.New("tarshard: negative seek")
	}
	g.off = offset
	return offset, nil
}
