package flight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"pipeline/sink/netsec"
)

// The token travels as gRPC metadata "authorization: Bearer <token>" on every call, the
// header pyarrow's FlightCallOptions(headers=...) and gRPC's per-RPC credentials send.
const (
	authHeader   = "authorization"
	bearerPrefix = "Bearer "
)

func peerName(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok {
		return p.Addr.String()
	}
	return "flight client"
}

// checkToken refuses a call without the right token with Unauthenticated, listing it in the
// summary; the token itself is never part of the message.
func (s *Sink) checkToken(ctx context.Context) error {
	var presented netsec.Secret
	if values := metadata.ValueFromIncomingContext(ctx, authHeader); len(values) > 0 {
		v, _ := strings.CutPrefix(values[0], bearerPrefix)
		presented = netsec.Secret(v)
	}
	if err := s.sec.Check(presented); err != nil {
		s.d.Refused(peerName(ctx), err)
		return status.Error(codes.Unauthenticated, err.Error())
	}
	return nil
}

func (s *Sink) checkStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.checkToken(ss.Context()); err != nil {
		return err
	}
	return handler(srv, ss)
}

func (s *Sink) checkUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.checkToken(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Sink) tlsFailed(who string, err error) {
	s.sec.TLSFailed()
	s.d.Refused(who, fmt.Errorf("TLS handshake: %w", err))
}

// countTLSFailures is gRPC's TLS credentials, reporting each failed server handshake (a
// plain-text client, one that does not trust the certificate). A connection closed before
// saying anything is a port probe, not counted.
type countTLSFailures struct {
	credentials.TransportCredentials
	failed func(who string, err error)
}

func (c countTLSFailures) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil && !errors.Is(err, io.EOF) {
		c.failed(conn.RemoteAddr().String(), err)
	}
	return out, info, err
}

func (c countTLSFailures) Clone() credentials.TransportCredentials {
	return countTLSFailures{c.TransportCredentials.Clone(), c.failed}
}

// bearerToken sends the token with every call.
type bearerToken struct{ token netsec.Secret }

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{authHeader: bearerPrefix + string(b.token)}, nil
}

// RequireTransportSecurity is false so that a token also works on loopback without TLS;
// beyond loopback the producer insists on TLS (or insecure: true).
func (bearerToken) RequireTransportSecurity() bool { return false }
