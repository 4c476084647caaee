// Package netsec decides who may use a network sink: TLS from certificate and key files, a
// shared-secret token a consumer must present before it can claim a rank, and the rule that a
// sink reachable from other machines uses both unless its config says insecure: true.
//
// The socket and Flight sinks share it; each carries the token its own way (a handshake
// field, gRPC metadata) and asks Server.Check.
package netsec

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
)

// Token lengths accepted: long enough not to be guessed, short enough for a handshake line.
const (
	MinTokenBytes = 16
	MaxTokenBytes = 256
)

// Refusals Check returns; the sinks send their text to the consumer.
var (
	ErrNoToken    = errors.New("this producer requires a token and none was presented")
	ErrWrongToken = errors.New("wrong token")
)

// Config is the part of a network sink's block that says who may connect.
type Config struct {
	// TLSCertFile and TLSKeyFile are PEM files (the certificate may carry its chain). Both or
	// neither.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// TokenFile or TokenEnv (a variable's name) holds the shared secret; at most one.
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// Insecure allows listening beyond loopback without TLS and a token.
	Insecure bool `yaml:"insecure"`
	// Warnings receives the warnings New writes (insecure exposure, a readable token file);
	// nil is os.Stderr.
	Warnings io.Writer `yaml:"-"`
}

// Server is a loaded Config: what a sink checks each consumer against.
type Server struct {
	tls       *tls.Config
	tokenHash *[sha256.Size]byte // nil: no token required
	warnings  []string

	refusedToken atomic.Int64
	refusedTLS   atomic.Int64
}

// New loads cfg for a sink listening on network ("unix" or "tcp") at address (host:port or a
// path). It refuses an address beyond loopback unless TLS and a token are both set or
// cfg.Insecure says so, and then warns.
func New(cfg Config, network, address string) (*Server, error) {
	s := &Server{}
	warn := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		s.warnings = append(s.warnings, msg)
		w := cfg.Warnings
		if w == nil {
			w = os.Stderr
		}
		fmt.Fprintf(w, "warning: %s\n", msg)
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, errors.New("tls_cert_file and tls_key_file go together")
	}
	if cfg.TLSCertFile != "" {
		if network == "unix" {
			return nil, errors.New("TLS is for TCP: a Unix socket is guarded by its file's permissions")
		}
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_cert_file %s, tls_key_file %s: %w", cfg.TLSCertFile, cfg.TLSKeyFile, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if cfg.TokenFile != "" || cfg.TokenEnv != "" {
		token, err := LoadToken(cfg.TokenFile, cfg.TokenEnv)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(cfg.TokenFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			warn("token_file %s can be read by other users (mode %v): chmod 600 it", cfg.TokenFile, fi.Mode().Perm())
		}
		h := sha256.Sum256([]byte(token))
		s.tokenHash = &h
	}
	if network == "unix" || s.tls != nil && s.tokenHash != nil || loopback(address) {
		return s, nil
	}
	var missing []string
	if s.tls == nil {
		missing = append(missing, "TLS (tls_cert_file, tls_key_file)")
	}
	if s.tokenHash == nil {
		missing = append(missing, "a token (token_file or token_env)")
	}
	what := strings.Join(missing, " and ")
	if !cfg.Insecure {
		return nil, fmt.Errorf("%s is reachable beyond this machine: it needs %s, or insecure: true to accept that anyone who can reach it may read the stream or claim a rank", address, what)
	}
	warn("insecure: true: %s is reachable beyond this machine without %s", address, what)
	return s, nil
}

// loopback says whether a listen address (host:port) only accepts connections from this
// machine. An empty host, 0.0.0.0 and :: listen on every interface; a name counts as loopback
// only if every address it resolves to is.
func loopback(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// LoadToken reads the shared secret from a file (surrounding whitespace dropped) or from the
// environment variable named env; exactly one of them is set. The error never holds the token.
func LoadToken(file, env string) (string, error) {
	var token string
	switch {
	case file != "" && env != "":
		return "", errors.New("token_file and token_env: set one of them")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if err := ValidToken(token); err != nil {
			return "", fmt.Errorf("token_file %s: %w", file, err)
		}
	case env != "":
		token = strings.TrimSpace(os.Getenv(env))
		if err := ValidToken(token); err != nil {
			return "", fmt.Errorf("token_env %s: %w", env, err)
		}
	default:
		return "", errors.New("no token_file or token_env")
	}
	return token, nil
}

// ValidToken checks a token fits the handshake line: MinTokenBytes to MaxTokenBytes of
// printable ASCII without spaces (`openssl rand -hex 32` makes one).
func ValidToken(token string) error {
	if len(token) < MinTokenBytes || len(token) > MaxTokenBytes {
		return fmt.Errorf("token has %d characters, want %d to %d", len(token), MinTokenBytes, MaxTokenBytes)
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("token character %d is not printable ASCII (or is a space)", i+1)
		}
	}
	return nil
}

// TLS is the server's TLS config, nil when it serves plain TCP.
func (s *Server) TLS() *tls.Config { return s.tls }

// TokenRequired says whether consumers must present a token.
func (s *Server) TokenRequired() bool { return s.tokenHash != nil }

// Check accepts a consumer's token (ignored when none is required). The comparison takes the
// same time whatever the token: both sides are hashed first, so neither a wrong byte's place
// nor the length shows. Every refusal is counted for Summary.
func (s *Server) Check(presented Secret) error {
	if s.tokenHash == nil {
		return nil
	}
	if presented == "" {
		s.refusedToken.Add(1)
		return ErrNoToken
	}
	h := sha256.Sum256([]byte(presented))
	if subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) != 1 {
		s.refusedToken.Add(1)
		return ErrWrongToken
	}
	return nil
}

// TLSFailed counts a connection whose TLS handshake failed (a plain-TCP client, one that does
// not trust the certificate).
func (s *Server) TLSFailed() { s.refusedTLS.Add(1) }

// Summary is the sink summary's part about security: what was required, the warnings, and
// how many connections were refused for a missing or wrong token or a failed TLS handshake
// (they are also among the sink's "refused").
func (s *Server) Summary() map[string]any {
	return map[string]any{
		"tls":               s.tls != nil,
		"token_required":    s.tokenHash != nil,
		"refused_token":     s.refusedToken.Load(),
		"refused_tls":       s.refusedTLS.Load(),
		"security_warnings": append([]string{}, s.warnings...),
	}
}

// Client is what a consumer needs to reach a secured sink.
type Client struct {
	// CAFile is a PEM file of the certificates that may sign the server's (for a self-made
	// CA); empty trusts the system's roots.
	CAFile string
	// ServerName overrides the host name checked against the server's certificate.
	ServerName string
	// Token is the shared secret, "" for none.
	Token Secret
}

// TLSConfig is the client's TLS config for a server at host, verifying its certificate.
func (c Client) TLSConfig(host string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.ServerName != "" {
		cfg.ServerName = c.ServerName
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", c.CAFile)
		}
	}
	return cfg, nil
}

// Secret is a string that prints as [redacted], so that a token in a config or client struct
// does not end up in a log by accident.
type Secret string

func (Secret) String() string   { return "[redacted]" }
func (Secret) GoString() string { return `"[redacted]"` }

// MarshalText keeps the token out of JSON and YAML dumps too.
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }
