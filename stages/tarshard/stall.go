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

// Guarded reads are at least minGuardedRead bytes, so that the tar reader's 512-byte header
// reads do not each cost a goroutine, and at most maxGuardedRead, so that the buffer an
// abandoned read still owns stays small.
const (
	minGuardedRead = 64 << 10
	maxGuardedRead = 1 << 20
)

// stallGuard reads a file sequentially with positioned reads, each bounded by a timeout. A
// read that times out is retried from the same offset (a new positioned read, so a request
// lost by a network filesystem is sent again) up to retries times; the first attempt to
// answer wins. A read that never returns cannot be interrupted: its goroutine is abandoned
// with its own buffer and ends when the read finally does.
type stallGuard struct {
	f       io.ReaderAt
	off     int64 // the reader's offset in the file
	timeout time.Duration
	retries int
	ctx     context.Context // the context of the Next call in progress

	window    []byte // bytes read ahead, from file offset windowOff
	windowOff int64
	windowErr error  // what the read that filled window returned after it (io.EOF at the end)
	spare     []byte // a buffer no read owns any more
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
	if g.off < g.windowOff || g.off >= g.windowOff+int64(len(g.window)) {
		if g.windowErr != nil && g.off == g.windowOff+int64(len(g.window)) {
			return 0, g.windowErr
		}
		if err := g.fill(min(max(len(p), minGuardedRead), maxGuardedRead)); err != nil {
			return 0, err
		}
		if len(g.window) == 0 {
			return 0, g.windowErr
		}
	}
	n := copy(p, g.window[g.off-g.windowOff:])
	g.off += int64(n)
	return n, nil
}

// fill reads up to want bytes at the offset into the window.
func (g *stallGuard) fill(want int) error {
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
			if r.err != nil && r.err != io.EOF {
				return r.err
			}
			// The winner's goroutine has ended, so the old window can be written again.
			g.spare = g.window[:0]
			g.window, g.windowOff, g.windowErr = r.buf[:r.n], g.off, r.err
			return nil
		case <-timer.C:
			if attempt == g.retries {
				return fmt.Errorf("%w: no answer to a %d-byte read at offset %d within %v, %d attempts",
					ErrStalled, want, g.off, g.timeout, attempt+1)
			}
			attempt++
			start()
			timer.Reset(g.timeout)
		case <-g.ctx.Done():
			return g.ctx.Err()
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
