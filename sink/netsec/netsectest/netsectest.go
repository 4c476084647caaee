// Package netsectest helps test the secured network sinks and their clients (Go and Python):
// throwaway certificates (a CA of its own and a server certificate it signs, valid for
// localhost, 127.0.0.1 and ::1), a token file, and waiting for a summary to show a refusal.
package netsectest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pipeline/sink/netsec"
)

// Files are the PEM files Write made.
type Files struct {
	CA   string // the CA's certificate: what a client trusts
	Cert string // the server's certificate
	Key  string // the server's private key
}

// Write makes a new CA and a server certificate signed by it, valid for an hour, into dir as
// ca.pem, server.pem and server-key.pem. The CA file is written last, so a reader that waits
// for it finds the others complete.
func Write(dir string) (Files, error) {
	f := Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem")}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pipeline test CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return f, err
	}
	ca, err = x509.ParseCertificate(caDER)
	if err != nil {
		return f, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return f, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return f, err
	}
	for _, file := range []struct {
		path, kind string
		der        []byte
	}{{f.Key, "PRIVATE KEY", keyDER}, {f.Cert, "CERTIFICATE", leafDER}, {f.CA, "CERTIFICATE", caDER}} {
		data := pem.EncodeToMemory(&pem.Block{Type: file.kind, Bytes: file.der})
		if err := writeAtomic(file.path, data); err != nil {
			return f, fmt.Errorf("netsectest: %w", err)
		}
	}
	return f, nil
}

// writeAtomic writes through a temporary file and a rename, so no reader sees half a file.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Secured is what a test of a secured sink needs: certificate files and a token in a file
// only its owner may read.
type Secured struct {
	Files
	TokenFile string
	Token     string
}

// New writes a Secured setup into a temporary directory of t's.
func New(t testing.TB) Secured {
	t.Helper()
	dir := t.TempDir()
	files, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := Secured{Files: files, TokenFile: filepath.Join(dir, "token"), Token: rand.Text()}
	if err := os.WriteFile(s.TokenFile, []byte(s.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// WaitSummary polls summary until ok accepts it, for up to 5 s, and returns the last one: a
// server counts a refused TLS handshake after the client that gave up has returned.
func WaitSummary(summary func() map[string]any, ok func(map[string]any) bool) map[string]any {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		m := summary()
		if ok(m) || time.Now().After(deadline) {
			return m
		}
	}
}

// Good is the client a Secured sink serves: it trusts the CA and has the token.
func (s Secured) Good() netsec.Client {
	return netsec.Client{CAFile: s.CA, Token: netsec.Secret(s.Token)}
}

// Intruder is a client a Secured sink refuses. Plain ones dial the address without TLS.
type Intruder struct {
	Name   string
	Plain  bool
	Client netsec.Client
}

// Intruders are the clients each secured sink's test sends first: plain (with the token),
// untrusting (the token, but the system's roots), no token, and a wrong token.
func (s Secured) Intruders() []Intruder {
	return []Intruder{
		{"plain", true, netsec.Client{Token: netsec.Secret(s.Token)}},
		{"untrusted certificate", false, netsec.Client{Token: netsec.Secret(s.Token)}},
		{"no token", false, netsec.Client{CAFile: s.CA}},
		{"wrong token", false, netsec.Client{CAFile: s.CA, Token: netsec.Secret(strings.ToLower(s.Token))}},
	}
}
