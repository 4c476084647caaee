// Package flight is a sink that serves the batch stream over Arrow Flight, so that CPU-only
// machines run the pipeline and GPU machines pull batches across the network (the
// tf.data-service pattern). Each rank calls DoGet with the ticket "rank=R/world=W" and gets
// batch i for every i with i mod W == R, in order, exactly as the socket sink deals them.
//
// Backpressure has two stages: a rank's queue is bounded in bytes (Write blocks when the rank
// whose turn it is has no room), and a DoGet handler sends the next batch only when gRPC lets
// it, which HTTP/2 flow control ties to how fast the client reads.
package flight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"pipeline/sink"
	"pipeline/sink/netsec"
	"pipeline/sink/rankqueue"
)

// Defaults for Config's zero values.
const (
	DefaultQueueBytes   = rankqueue.DefaultQueueBytes
	DefaultCloseTimeout = rankqueue.DefaultCloseTimeout
	// abortGrace is how long handlers get to end their streams with an error status once the
	// stream is aborted, before the server cuts the connections.
	abortGrace = 2 * time.Second
)

// Config is the sink: block for kind: flight.
type Config struct {
	// Path is "grpc://host:port" or "host:port" (port 0 picks a free one); with TLS set,
	// clients dial it as "grpc+tls://host:port".
	Path string `yaml:"path"`
	// World is the number of ranks; 0 takes it from the first ticket.
	World int `yaml:"world_size"`
	// QueueBytes bounds each rank's queue, the batch being sent included.
	QueueBytes int64 `yaml:"queue_bytes"`
	// CloseTimeout bounds how long Close waits for the ranks to take what is queued.
	CloseTimeout time.Duration `yaml:"close_timeout"`
	// Security is TLS, the token and the insecure switch (docs/transport.md, Security).
	Security netsec.Config `yaml:",inline"`
	// Allocator is used by the IPC writers (metadata only).
	Allocator memory.Allocator `yaml:"-"`
}

// Sink serves batches to Flight clients. It implements sink.Sink.
type Sink struct {
	arrowflight.BaseFlightServer
	cfg       Config
	d         *rankqueue.Dispatcher
	sec       *netsec.Server
	grpc      *grpc.Server
	ln        net.Listener
	serveDone chan struct{}

	mu       sync.Mutex
	closed   bool
	closeErr error
}

var (
	_ sink.Sink     = (*Sink)(nil)
	_ sink.Stateful = (*Sink)(nil)
)

// New starts the Flight server on cfg.Path.
func New(cfg Config) (*Sink, error) {
	if cfg.QueueBytes == 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.Allocator == nil {
		cfg.Allocator = memory.DefaultAllocator
	}
	d, err := rankqueue.New(rankqueue.Config{World: cfg.World, QueueBytes: cfg.QueueBytes})
	if err != nil {
		return nil, fmt.Errorf("flight %s: %w", cfg.Path, err)
	}
	if strings.HasPrefix(cfg.Path, "grpc+tls://") && cfg.Security.TLSCertFile == "" {
		return nil, fmt.Errorf("flight %s: a grpc+tls:// path needs tls_cert_file and tls_key_file", cfg.Path)
	}
	sec, err := netsec.New(cfg.Security, "tcp", hostPort(cfg.Path))
	if err != nil {
		return nil, fmt.Errorf("flight %s: %w", cfg.Path, err)
	}
	ln, err := net.Listen("tcp", hostPort(cfg.Path))
	if err != nil {
		return nil, fmt.Errorf("flight: listen on %s: %w", cfg.Path, err)
	}
	s := &Sink{cfg: cfg, d: d, sec: sec, ln: ln, serveDone: make(chan struct{})}
	// The server's default send limit (2 GiB) already fits a batch; the client's receive
	// limit is what needs raising (see Dial). The token is checked on every call before
	// its handler runs, so a client without it never reaches DoGet's rank claim.
	opts := []grpc.ServerOption{grpc.ChainStreamInterceptor(s.checkStream), grpc.ChainUnaryInterceptor(s.checkUnary)}
	if sec.TLS() != nil {
		opts = append(opts, grpc.Creds(countTLSFailures{credentials.NewTLS(sec.TLS()), s.tlsFailed}))
	}
	s.grpc = grpc.NewServer(opts...)
	arrowflight.RegisterFlightServiceServer(s.grpc, s)
	go func() {
		defer close(s.serveDone)
		s.grpc.Serve(ln) // returns when Close stops the server
	}()
	return s, nil
}

func hostPort(address string) string {
	for _, scheme := range []string{"grpc://", "grpc+tcp://", "grpc+tls://"} {
		address = strings.TrimPrefix(address, scheme)
	}
	return address
}

// Address is where clients connect, as "grpc://host:port", or "grpc+tls://host:port" when
// the sink serves TLS.
func (s *Sink) Address() string {
	if s.sec.TLS() != nil {
		return "grpc+tls://" + s.ln.Addr().String()
	}
	return "grpc://" + s.ln.Addr().String()
}

// Ticket names one rank's stream: "rank=R/world=W".
func Ticket(rank, world int) []byte { return []byte(fmt.Sprintf("rank=%d/world=%d", rank, world)) }

// ParseTicket reads "rank=R/world=W".
func ParseTicket(ticket []byte) (rank, world int, err error) {
	r, w, ok := strings.Cut(string(ticket), "/")
	rv, ok1 := strings.CutPrefix(r, "rank=")
	wv, ok2 := strings.CutPrefix(w, "world=")
	if ok && ok1 && ok2 {
		rank, err1 := strconv.Atoi(rv)
		world, err2 := strconv.Atoi(wv)
		if err1 == nil && err2 == nil {
			return rank, world, nil
		}
	}
	return 0, 0, fmt.Errorf("ticket %q: want rank=R/world=W", ticket)
}

// Write queues rec for its rank, blocking while that rank's queue is full. A cancelled ctx
// aborts every stream with an error status.
func (s *Sink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if err := s.d.Put(ctx, rec); err != nil {
		return fmt.Errorf("flight %s: %w", s.Address(), err)
	}
	return nil
}

// SetPipelineState takes the stream's positions from the runtime; each batch then carries its
// own to its client, as the FlightData's app_metadata (a JSON object of rankqueue.MetaBatch and
// the rest: pyarrow's Flight reader shows no IPC message metadata).
func (s *Sink) SetPipelineState(state []byte) { s.d.SetPipelineState(state) }

// PipelineState is nil: the clients keep the checkpoints, and resume with --resume.
func (s *Sink) PipelineState() []byte { return nil }

// Fail tells the sink the run failed, so that Close ends every stream with an error status
// rather than a clean end.
func (s *Sink) Fail(err error) { s.d.Fail(err) }

// Close ends the stream: after a clean run it waits (up to CloseTimeout) for every queued batch
// to be sent and ends each DoGet cleanly; after Fail or a timeout, each DoGet ends with an
// Aborted status. It returns once the server has stopped.
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
	// Handlers now end on their own, unless one is stuck sending to a client that stopped
	// reading. GracefulStop lets the ended ones deliver their last message and status; past
	// the deadline, Stop cuts the connections and the stuck sends fail.
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(max(time.Until(deadline), abortGrace)):
		err := fmt.Errorf("clients did not finish reading within %s", s.cfg.CloseTimeout)
		errs = append(errs, err)
		s.d.Abort(err)
		s.grpc.Stop()
		<-stopped
	}
	<-s.serveDone
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		s.closeErr = fmt.Errorf("flight %s: %w", s.Address(), err)
	}
	return s.closeErr
}

// Summary reports what was sent to whom, how long Write waited for the clients, and the
// clients refused, those without the right token or TLS counted apart.
func (s *Sink) Summary() map[string]any {
	m := s.d.Summary()
	m["address"] = s.Address()
	maps.Copy(m, s.sec.Summary())
	return m
}

// QueuedBytes is what the rank queues hold now, batches being sent included.
func (s *Sink) QueuedBytes() int64 { return s.d.QueuedBytes() }

// appMetadata is rec's position metadata as a JSON object, nil when it has none.
func appMetadata(rec arrow.RecordBatch) []byte {
	md := rankqueue.Metadata(rec)
	if md == nil {
		return nil
	}
	b, _ := json.Marshal(md)
	return b
}

// DoGet streams one rank's batches. A client that goes away mid-stream fails the run (there
// is no acknowledgement, so its last batch can be neither counted nor safely resent).
func (s *Sink) DoGet(t *arrowflight.Ticket, stream arrowflight.FlightService_DoGetServer) error {
	ctx := stream.Context()
	who := peerName(ctx)
	rank, world, err := ParseTicket(t.GetTicket())
	var c *rankqueue.Consumer
	if err == nil {
		c, err = s.d.Claim(rank, world, who)
	}
	if err != nil {
		s.d.Refused(who, err)
		return status.Error(codes.FailedPrecondition, err.Error())
	}

	schema, err := s.d.Schema(ctx)
	if schema == nil { // closed or aborted before the first batch
		schema = arrow.NewSchema(nil, nil)
	}
	w := arrowflight.NewRecordWriter(stream, ipc.WithSchema(schema), ipc.WithAllocator(s.cfg.Allocator))
	defer w.Close()
	for err == nil {
		var rec arrow.RecordBatch
		if rec, err = c.Next(ctx); err != nil {
			break
		}
		if err = w.WriteWithAppMetadata(rec, appMetadata(rec)); err != nil {
			c.Fail(err)
			return err
		}
		c.Done()
	}
	switch {
	case err == io.EOF:
		return w.Close() // sends the schema if the stream was empty
	case ctx.Err() != nil:
		return c.Fail(ctx.Err())
	default:
		return status.Error(codes.Aborted, err.Error())
	}
}
