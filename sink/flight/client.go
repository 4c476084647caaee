package flight

import (
	"context"
	"fmt"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// MaxRecvMsgSize is the receive limit Dial sets. Each batch travels as one FlightData message
// (256 MoCo pairs of 224x224x3 views: about 77 MB), and gRPC refuses messages over 4 MiB by
// default ("received message larger than max"), so a client must raise the limit above the
// largest batch it expects. pyarrow's Flight client has no such limit.
const MaxRecvMsgSize = 1 << 30

// Dial connects to a Flight sink without TLS (the trainer and the pipeline share a trusted
// network), with the receive limit raised to MaxRecvMsgSize. opts come after the defaults,
// so they can override them.
func Dial(address string, opts ...grpc.DialOption) (arrowflight.Client, error) {
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxRecvMsgSize)),
	}, opts...)
	c, err := arrowflight.NewClientWithMiddleware(hostPort(address), nil, nil, opts...)
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
