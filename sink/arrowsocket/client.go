package arrowsocket

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"pipeline/sink/netsec"
)

// ErrAborted is wrapped by Reader.Err when the producer ended the stream with an error, or the
// stream ended without its trailer (producer gone, connection lost).
var ErrAborted = errors.New("stream aborted")

// Reader is a Go consumer of one rank's stream: the Go counterpart of the Python client.
type Reader struct {
	conn    net.Conn
	br      *bufio.Reader
	ipc     *ipc.Reader
	read    int64
	err     error
	trailer bool
	opts    []ipc.Option
}

// Dial connects to a socket sink's address as the given rank of world, without a token. It
// returns once the producer has accepted the rank, before the first batch exists.
func Dial(ctx context.Context, address string, rank, world int, opts ...ipc.Option) (*Reader, error) {
	return Dialer{}.Dial(ctx, address, rank, world, opts...)
}

// Dialer connects to socket sinks that require TLS or a token. The zero Dialer is Dial.
type Dialer struct {
	// Security is the CA file that tcp+tls:// servers are checked against (empty: the
	// system's roots) and the token sent in the handshake.
	Security netsec.Client
}

// Dial is the package's Dial with d's security: a tcp+tls:// address is dialled with TLS and
// the server's certificate verified; the token, if any, is sent in the handshake.
func (d Dialer) Dial(ctx context.Context, address string, rank, world int, opts ...ipc.Option) (*Reader, error) {
	network, where, useTLS, err := splitAddress(address)
	if err != nil {
		return nil, err
	}
	if d.Security.Token != "" {
		if err := netsec.ValidToken(string(d.Security.Token)); err != nil {
			return nil, fmt.Errorf("arrowsocket: %w", err)
		}
	}
	var tlsCfg *tls.Config
	if useTLS {
		host, _, err := net.SplitHostPort(where)
		if err != nil {
			return nil, fmt.Errorf("arrowsocket: address %q: %w", address, err)
		}
		if tlsCfg, err = d.Security.TLSConfig(host); err != nil {
			return nil, fmt.Errorf("arrowsocket %s: %w", address, err)
		}
	} else if d.Security.CAFile != "" {
		return nil, fmt.Errorf("arrowsocket %s: a CA file is for tcp+tls:// addresses; this one is not TLS", address)
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, network, where)
	if err != nil {
		return nil, fmt.Errorf("arrowsocket: rank %d: %w", rank, err)
	}
	if tlsCfg != nil {
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("arrowsocket %s: rank %d: TLS: %w", address, rank, err)
		}
		conn = tc
	}
	r := &Reader{conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
	if err := r.hello(ctx, Hello{Rank: rank, World: world, Token: d.Security.Token}, opts); err != nil {
		conn.Close()
		return nil, fmt.Errorf("arrowsocket %s: rank %d: %w", address, rank, err)
	}
	return r, nil
}

func (r *Reader) hello(ctx context.Context, h Hello, opts []ipc.Option) error {
	if deadline, ok := ctx.Deadline(); ok {
		r.conn.SetDeadline(deadline)
		defer r.conn.SetDeadline(time.Time{})
	}
	if _, err := r.conn.Write([]byte(h.line())); err != nil {
		return fmt.Errorf("sending handshake: %w", err)
	}
	answer, err := readLineBuffered(r.br)
	if err != nil {
		return fmt.Errorf("reading handshake answer: %w", err)
	}
	if answer != "ok" {
		return fmt.Errorf("refused: %s", strings.TrimPrefix(answer, "error "))
	}
	r.opts = opts
	return nil
}

// Schema is the stream's schema, known after the first call to Next (the producer sends it
// with its first batch, or at the end of an empty stream).
func (r *Reader) Schema() *arrow.Schema {
	if r.ipc == nil {
		return nil
	}
	return r.ipc.Schema()
}

// Next advances to the next batch; false at the end or on error (see Err).
func (r *Reader) Next() bool {
	if r.trailer || r.err != nil {
		return false
	}
	if r.ipc == nil {
		var err error
		if r.ipc, err = ipc.NewReader(r.br, r.opts...); err != nil {
			r.err = fmt.Errorf("%w: reading schema: %w", ErrAborted, err)
			return false
		}
	}
	if r.ipc.Next() {
		r.read++
		return true
	}
	if err := r.ipc.Err(); err != nil {
		r.err = fmt.Errorf("%w after %d batches: %w", ErrAborted, r.read, err)
		return false
	}
	r.trailer = true
	r.err = r.checkTrailer()
	return false
}

// checkTrailer reads "end ok batches=N" and checks N against what was read.
func (r *Reader) checkTrailer() error {
	line, err := readLineBuffered(r.br)
	if err != nil {
		return fmt.Errorf("%w after %d batches: no trailer: %v", ErrAborted, r.read, err)
	}
	if msg, isErr := strings.CutPrefix(line, "end error "); isErr {
		return fmt.Errorf("%w by the producer after %d batches: %s", ErrAborted, r.read, msg)
	}
	var n int64
	if _, err := fmt.Sscanf(line, "end ok batches=%d", &n); err != nil {
		return fmt.Errorf("bad trailer %q", line)
	}
	if n != r.read {
		return fmt.Errorf("the producer sent %d batches, %d arrived", n, r.read)
	}
	return nil
}

// RecordBatch is the current batch, valid until the next call to Next (Retain it to keep it).
func (r *Reader) RecordBatch() arrow.RecordBatch { return r.ipc.RecordBatch() }

// Err is nil after a complete stream ("end ok" with the right count), else what went wrong.
func (r *Reader) Err() error { return r.err }

// Close disconnects; closing before the end makes the producer fail the run.
func (r *Reader) Close() error {
	if r.ipc != nil {
		r.ipc.Release()
	}
	return r.conn.Close()
}
