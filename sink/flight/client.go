package flight

import (
	"context"
	"fmt"
	"net"
	"strings"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"pipeline/sink/netsec"
)

// MaxRecvMsgSize is the receive limit Dial sets. Each batch travels as one FlightData message
// (256 MoCo pairs of 224x224x3 views: about 77 MB), and gRPC refuses messages over 4 MiB by
// default ("received message larger than max"), so a client must raise the limit above the
// largest batch it expects. pyarrow's Flight client has no such limit.
const MaxRecvMsgSize = 1 << 30

// Dial connects to a Flight sink without a token, with the receive limit raised to
// MaxRecvMsgSize. opts come after the defaults, so they can override them.
func Dial(address string, opts ...grpc.DialOption) (arrowflight.Client, error) {
	return Dialer{}.Dial(address, opts...)
}

// Dialer connects to Flight sinks that require TLS or a token. The zero Dialer is Dial.
type Dialer struct {
	// Security is the CA file that grpc+tls:// servers are checked against (empty: the
	// system's roots) and the token sent with every call.
	Security netsec.Client
}

// Dial is the package's Dial with d's security: a grpc+tls:// address is dialled with TLS and
// the server's certificate verified, grpc:// and host:port without.
func (d Dialer) Dial(address string, opts ...grpc.DialOption) (arrowflight.Client, error) {
	creds := insecure.NewCredentials()
	if strings.HasPrefix(address, "grpc+tls://") {
		host, _, err := net.SplitHostPort(hostPort(address))
		if err != nil {
			return nil, fmt.Errorf("flight: address %q: %w", address, err)
		}
		cfg, err := d.Security.TLSConfig(host)
		if err != nil {
			return nil, fmt.Errorf("flight %s: %w", address, err)
		}
		creds = credentials.NewTLS(cfg)
	} else if d.Security.CAFile != "" {
		return nil, fmt.Errorf("flight %s: a CA file is for grpc+tls:// addresses; this one is not TLS", address)
	}
	defaults := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxRecvMsgSize)),
	}
	if d.Security.Token != "" {
		defaults = append(defaults, grpc.WithPerRPCCredentials(bearerToken{d.Security.Token}))
	}
	c, err := arrowflight.NewClientWithMiddleware(hostPort(address), nil, nil, append(defaults, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("flight: dial %s: %w", address, err)
	}
	return c, nil
}

// ReadRank starts rank's stream. The reader's Err is nil after a clean end and carries the
// producer's status (codes.Aborted) when the run failed. Cancel ctx or Release the reader
// to stop early, which fails the producer's run.
func ReadRank(ctx context.Context, c arrowflight.Client, rank, world int, opts ...ipc.Option) (*RankReader, error) {
	// Releasing an arrowflight.Reader leaves its gRPC stream open: the producer would go on
	// sending until flow control stops it, then block for good. Release cancels it instead.
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.DoGet(ctx, &arrowflight.Ticket{Ticket: Ticket(rank, world)})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("flight: rank %d of %d: %w", rank, world, err)
	}
	r, err := arrowflight.NewRecordReader(stream, opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("flight: rank %d of %d: reading schema: %w", rank, world, err)
	}
	return &RankReader{Reader: r, cancel: cancel}, nil
}

// RankReader is one rank's stream, as ReadRank returns it.
type RankReader struct {
	*arrowflight.Reader
	cancel context.CancelFunc
}

// Release ends the stream (a producer still sending sees its consumer lost) and releases the
// reader's memory.
func (r *RankReader) Release() {
	r.cancel()
	r.Reader.Release()
}
