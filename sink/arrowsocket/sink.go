// Package arrowsocket is a sink that serves the batch stream to trainers on a Unix socket or a
// TCP port, as Arrow IPC streams, one connection per rank.
//
// It is pull based: batch i is queued for rank i mod world (so each rank gets a fixed,
// disjoint part of the stream, in order, whatever the timing), each rank's queue is bounded in
// bytes, and a connection writes only as fast as its trainer reads. When the queue whose turn
// it is is full, Write blocks, and so does the pipeline behind it.
package arrowsocket

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"pipeline/sink"
	"pipeline/sink/netsec"
	"pipeline/sink/rankqueue"
)

// Defaults for Config's zero values.
const (
	DefaultQueueBytes       = rankqueue.DefaultQueueBytes
	DefaultCloseTimeout     = rankqueue.DefaultCloseTimeout
	DefaultHandshakeTimeout = 10 * time.Second
	// abortGrace is how long a connection may take to finish its write once the stream is
	// aborted, before the write fails.
	abortGrace = 2 * time.Second
)

// Config is the sink: block for kind: arrow-socket.
type Config struct {
	// Path is "unix:///path/to.sock" or "tcp://host:port" (port 0 picks a free one); with
	// TLS set, consumers dial it as "tcp+tls://host:port".
	Path string `yaml:"path"`
	// World is the number of consumers (ranks); 0 takes it from the first handshake.
	World int `yaml:"world_size"`
	// QueueBytes bounds each rank's queue, the batch being sent included.
	QueueBytes int64 `yaml:"queue_bytes"`
	// CloseTimeout bounds how long Close waits for the consumers to take what is queued.
	CloseTimeout time.Duration `yaml:"close_timeout"`
	// HandshakeTimeout bounds how long a new connection may take to say which rank it is.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// Security is TLS, the token and the insecure switch (docs/transport.md, Security).
	Security netsec.Config `yaml:",inline"`
	// Allocator is used by the IPC writers (they allocate little: metadata only).
	Allocator memory.Allocator `yaml:"-"`
}

// Sink serves batches to socket consumers. It implements sink.Sink.
type Sink struct {
	cfg  Config
	ln   net.Listener
	addr string
	d    *rankqueue.Dispatcher
	sec  *netsec.Server

	ctx    context.Context // ends when Close gives up on the connections
	cancel context.CancelFunc

	acceptDone chan struct{}
	conns      sync.WaitGroup

	mu       sync.Mutex
	live     map[net.Conn]struct{}
	closeErr error
	closed   bool
}

var (
	_ sink.Sink     = (*Sink)(nil)
	_ sink.Stateful = (*Sink)(nil)
)

// New opens the socket at cfg.Path and starts accepting consumers.
func New(cfg Config) (*Sink, error) {
	if cfg.QueueBytes == 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.Allocator == nil {
		cfg.Allocator = memory.DefaultAllocator
	}
	d, err := rankqueue.New(rankqueue.Config{World: cfg.World, QueueBytes: cfg.QueueBytes})
	if err != nil {
		return nil, fmt.Errorf("arrowsocket %s: %w", cfg.Path, err)
	}
	network, where, wantTLS, err := splitAddress(cfg.Path)
	if err != nil {
		return nil, err
	}
	if wantTLS && cfg.Security.TLSCertFile == "" {
		return nil, fmt.Errorf("arrowsocket %s: a tcp+tls:// path needs tls_cert_file and tls_key_file", cfg.Path)
	}
	sec, err := netsec.New(cfg.Security, network, where)
	if err != nil {
		return nil, fmt.Errorf("arrowsocket %s: %w", cfg.Path, err)
	}
	if network == "unix" {
		if err := removeStaleSocket(where); err != nil {
			return nil, fmt.Errorf("arrowsocket %s: %w", cfg.Path, err)
		}
	}
	ln, err := net.Listen(network, where)
	if err != nil {
		return nil, fmt.Errorf("arrowsocket: listen on %s: %w", cfg.Path, err)
	}
	scheme := network
	if sec.TLS() != nil {
		ln = tls.NewListener(ln, sec.TLS())
		scheme = "tcp+tls"
	}
	s := &Sink{
		cfg:        cfg,
		ln:         ln,
		addr:       scheme + "://" + ln.Addr().String(),
		d:          d,
		sec:        sec,
		acceptDone: make(chan struct{}),
		live:       make(map[net.Conn]struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.accept()
	return s, nil
}

// ParseAddress splits "unix:///path", "tcp://host:port" or "tcp+tls://host:port" into a
// network ("unix" or "tcp") and an address.
func ParseAddress(address string) (network, where string, err error) {
	network, where, _, err = splitAddress(address)
	return network, where, err
}

// splitAddress is ParseAddress that also says whether the address asks for TLS.
func splitAddress(address string) (network, where string, useTLS bool, err error) {
	scheme, where, ok := strings.Cut(address, "://")
	if !ok || where == "" || (scheme != "unix" && scheme != "tcp" && scheme != "tcp+tls") {
		return "", "", false, fmt.Errorf("arrowsocket: address %q: want unix:///path/to.sock, tcp://host:port or tcp+tls://host:port", address)
	}
	network, _, useTLS = strings.Cut(scheme, "+")
	return network, where, useTLS, nil
}

// removeStaleSocket deletes a socket file left by a producer that died, and refuses to touch
// one that still answers or anything that is not a socket.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s is in use by another producer", path)
	}
	return os.Remove(path)
}

// Address is where consumers connect, with the port filled in for "tcp://host:0", and the
// scheme "tcp+tls" when the sink serves TLS.
func (s *Sink) Address() string { return s.addr }

// Write queues rec for its rank, blocking while that rank's queue is full. A cancelled ctx
// aborts the whole stream: consumers get an error trailer rather than a short clean stream.
func (s *Sink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if err := s.d.Put(ctx, rec); err != nil {
		return fmt.Errorf("arrowsocket %s: %w", s.addr, err)
	}
	return nil
}

// SetPipelineState takes the stream's positions from the runtime; each batch then carries its
// own to its consumer, as IPC message metadata (rankqueue.MetaBatch and the rest).
func (s *Sink) SetPipelineState(state []byte) { s.d.SetPipelineState(state) }

// PipelineState is nil: the consumers keep the checkpoints, and resume with --resume.
func (s *Sink) PipelineState() []byte { return nil }

// Fail tells the sink the run failed, so that Close ends every stream with an error trailer
// instead of a clean end. The runtime calls it (when present) before Close after an error.
func (s *Sink) Fail(err error) { s.d.Fail(err) }

// Close ends the stream. After a clean run it waits (up to CloseTimeout) until every queued
// batch is sent, then each consumer gets the end-of-stream marker and "end ok". After Fail, or
// when the consumers do not take their batches in time, what is queued is released and each
// consumer gets "end error". Close returns once every connection is closed.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.closeErr
	}
	s.closed = true
	s.mu.Unlock()

	deadline := time.Now().Add(s.cfg.CloseTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var errs []error
	if err := s.d.Finish(ctx); err != nil {
		errs = append(errs, err)
	}
	if s.d.Err() != nil {
		s.expireWrites()
	}
	s.ln.Close() // no new consumers; a Unix socket file is removed
	<-s.acceptDone

	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	wait := max(time.Until(deadline), abortGrace)
	select {
	case <-done:
	case <-time.After(wait):
		err := fmt.Errorf("consumers did not finish reading within %s", s.cfg.CloseTimeout)
		errs = append(errs, err)
		s.d.Abort(err)
		s.expireWrites()
		s.cancel()
		s.closeLive()
		<-done
	}
	s.cancel()
	s.mu.Lock()
	s.closeErr = errors.Join(errs...)
	if s.closeErr != nil {
		s.closeErr = fmt.Errorf("arrowsocket %s: %w", s.addr, s.closeErr)
	}
	s.mu.Unlock()
	return s.closeErr
}

// expireWrites gives connections stuck in a write abortGrace to finish it, once the stream
// is aborted.
func (s *Sink) expireWrites() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.live {
		c.SetWriteDeadline(time.Now().Add(abortGrace))
	}
}

func (s *Sink) closeLive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.live {
		c.Close()
	}
}

// Summary reports what was sent to whom, how long Write waited for the consumers, and the
// consumers refused, those without the right token or TLS counted apart.
func (s *Sink) Summary() map[string]any {
	m := s.d.Summary()
	m["address"] = s.addr
	maps.Copy(m, s.sec.Summary())
	return m
}

// QueuedBytes is what the rank queues hold now, batches being sent included.
func (s *Sink) QueuedBytes() int64 { return s.d.QueuedBytes() }

func (s *Sink) accept() {
	defer close(s.acceptDone)
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return // the listener was closed by Close
		}
		s.conns.Add(1)
		go s.serve(conn)
	}
}

func (s *Sink) track(c net.Conn, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.live[c] = struct{}{}
	} else {
		delete(s.live, c)
	}
}

// serve runs one consumer's connection from handshake to trailer.
func (s *Sink) serve(conn net.Conn) {
	defer s.conns.Done()
	defer conn.Close()
	s.track(conn, true)
	defer s.track(conn, false)

	peer := conn.RemoteAddr().String()
	if peer == "" || peer == "@" {
		peer = "unix client"
	}
	c, err := s.handshake(conn, peer)
	if err != nil {
		return
	}
	bw := bufio.NewWriterSize(conn, 64<<10)
	schema, err := s.d.Schema(s.ctx)
	if schema == nil { // closed or aborted before the first batch: a stream still needs a schema
		schema = arrow.NewSchema(nil, nil)
	}
	w := ipc.NewWriter(bw, ipc.WithSchema(schema), ipc.WithAllocator(s.cfg.Allocator))
	if err != nil {
		s.finish(bw, w, c, err)
		return
	}
	for {
		rec, err := c.Next(s.ctx)
		if err != nil {
			s.finish(bw, w, c, err)
			return
		}
		err = w.Write(rec)
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			c.Fail(err)
			w.Close()
			return
		}
		c.Done()
	}
}

// handshake reads the consumer's hello, checks its token, claims its rank and answers;
// refusals are listed in the summary. A TLS connection first completes TLS: a client that
// fails it (plain TCP, or it does not trust the certificate) is refused without an answer.
func (s *Sink) handshake(conn net.Conn, peer string) (*rankqueue.Consumer, error) {
	conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	if tc, ok := conn.(*tls.Conn); ok {
		if err := tc.HandshakeContext(s.ctx); err != nil {
			if errors.Is(err, io.EOF) { // a port probe, as below
				return nil, fmt.Errorf("%s: TLS handshake: %w", peer, err)
			}
			s.sec.TLSFailed()
			err = fmt.Errorf("TLS handshake: %w", err)
			s.d.Refused(peer, err)
			if rhe := (tls.RecordHeaderError{}); errors.As(err, &rhe) && rhe.Conn != nil {
				// A plain-TCP consumer: tell it in its own terms (net/http does the same).
				io.WriteString(rhe.Conn, "error this producer serves TLS: connect to "+s.addr+"\n")
			}
			return nil, fmt.Errorf("%s: %w", peer, err)
		}
	}
	line, err := readLine(conn)
	switch {
	case errors.Is(err, io.EOF): // closed without a word (a port probe): nothing was asked
		return nil, fmt.Errorf("%s: reading handshake: %w", peer, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout)) // time to answer
		return nil, s.refuse(conn, peer, fmt.Errorf("no handshake line within handshake_timeout %s", s.cfg.HandshakeTimeout))
	case err != nil:
		return nil, s.refuse(conn, peer, fmt.Errorf("reading handshake: %w", err))
	}
	hello, err := parseHello(line)
	if err == nil {
		err = s.sec.Check(hello.Token) // before the rank is claimed: a refusal takes nothing
	}
	if err == nil {
		var c *rankqueue.Consumer
		c, err = s.d.Claim(hello.Rank, hello.World, peer)
		if err == nil {
			if _, err = io.WriteString(conn, "ok\n"); err != nil {
				c.Fail(fmt.Errorf("answering handshake: %w", err))
				return nil, err
			}
			return c, nil
		}
	}
	return nil, s.refuse(conn, peer, err)
}

// refuse lists a refused consumer in the summary and tells it why.
func (s *Sink) refuse(conn net.Conn, peer string, err error) error {
	s.d.Refused(peer, err) // before answering, so the summary is never behind
	io.WriteString(conn, "error "+oneLine(err.Error())+"\n")
	return fmt.Errorf("%s: %w", peer, err)
}

// finish ends a stream: end-of-stream marker, then the trailer saying whether it is complete.
func (s *Sink) finish(bw *bufio.Writer, w *ipc.Writer, c *rankqueue.Consumer, streamErr error) {
	w.Close() // writes the end-of-stream marker (and the schema, for an empty stream)
	if streamErr == io.EOF {
		fmt.Fprintf(bw, "end ok batches=%d\n", c.Sent())
	} else {
		fmt.Fprintf(bw, "end error %s\n", oneLine(streamErr.Error()))
	}
	bw.Flush()
}
