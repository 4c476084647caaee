package netsec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pipeline/sink/netsec"
	"pipeline/sink/netsec/netsectest"
)

// Listening beyond loopback without TLS and a token is refused, naming what is missing;
// insecure: true lets it through with a warning, which the summary also carries.
func TestExposureNeedsTLSAndToken(t *testing.T) {
	sec := netsectest.New(t)
	tlsOnly := netsec.Config{TLSCertFile: sec.Cert, TLSKeyFile: sec.Key}
	tokenOnly := netsec.Config{TokenFile: sec.TokenFile}
	both := netsec.Config{TLSCertFile: sec.Cert, TLSKeyFile: sec.Key, TokenFile: sec.TokenFile}
	for _, tc := range []struct {
		name    string
		cfg     netsec.Config
		missing string // "" for accepted
	}{
		{"plain", netsec.Config{}, "it needs TLS (tls_cert_file, tls_key_file) and a token (token_file or token_env)"},
		{"tls only", tlsOnly, "it needs a token"},
		{"token only", tokenOnly, "it needs TLS"},
		{"both", both, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var warnings bytes.Buffer
			tc.cfg.Warnings = &warnings
			_, err := netsec.New(tc.cfg, "tcp", "0.0.0.0:7000")
			switch {
			case tc.missing == "" && err != nil:
				t.Fatal(err)
			case tc.missing != "" && (err == nil || !strings.Contains(err.Error(), tc.missing) || !strings.Contains(err.Error(), "insecure: true")):
				t.Fatalf("error %v, want one saying %q and naming insecure: true", err, tc.missing)
			}
			if warnings.Len() != 0 {
				t.Errorf("warned %q", warnings.String())
			}
			if tc.missing == "" {
				return
			}
			tc.cfg.Insecure = true
			s, err := netsec.New(tc.cfg, "tcp", "0.0.0.0:7000")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(warnings.String(), "warning: insecure: true: 0.0.0.0:7000 is reachable beyond this machine without ") {
				t.Errorf("warning %q", warnings.String())
			}
			if w := s.Summary()["security_warnings"].([]string); len(w) != 1 {
				t.Errorf("summary warnings %q", w)
			}
		})
	}
	// Loopback and Unix sockets stay open by default.
	for _, where := range [][2]string{{"tcp", "127.0.0.1:0"}, {"tcp", "localhost:7000"}, {"unix", "/tmp/p.sock"}} {
		if _, err := netsec.New(netsec.Config{}, where[0], where[1]); err != nil {
			t.Errorf("%s %s: %v", where[0], where[1], err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	sec := netsectest.New(t)
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	t.Setenv("NETSEC_TEST_EMPTY", "")
	for _, tc := range []struct {
		cfg  netsec.Config
		want string
	}{
		{netsec.Config{TLSCertFile: sec.Cert}, "tls_cert_file and tls_key_file go together"},
		{netsec.Config{TLSCertFile: sec.Cert, TLSKeyFile: sec.CA}, "tls_cert_file " + sec.Cert},
		{netsec.Config{TokenFile: sec.TokenFile, TokenEnv: "X"}, "set one of them"},
		{netsec.Config{TokenFile: short}, "token has 3 characters, want 16 to 256"},
		{netsec.Config{TokenEnv: "NETSEC_TEST_EMPTY"}, "token_env NETSEC_TEST_EMPTY: token has 0 characters"},
		{netsec.Config{TokenFile: filepath.Join(t.TempDir(), "absent")}, "token_file: open"},
	} {
		if _, err := netsec.New(tc.cfg, "tcp", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := netsec.New(netsec.Config{TLSCertFile: sec.Cert, TLSKeyFile: sec.Key}, "unix", "/tmp/p.sock"); err == nil {
		t.Error("TLS on a Unix socket accepted")
	}
	if err := netsec.ValidToken(strings.Repeat("a", 10) + " " + strings.Repeat("b", 10)); err == nil {
		t.Error("a token with a space accepted: it would split the handshake line")
	}
}

// A token file others can read is used, with a warning.
func TestReadableTokenFileWarns(t *testing.T) {
	sec := netsectest.New(t)
	os.Chmod(sec.TokenFile, 0o644)
	var warnings bytes.Buffer
	if _, err := netsec.New(netsec.Config{TokenFile: sec.TokenFile, Warnings: &warnings}, "tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warnings.String(), "can be read by other users (mode -rw-r--r--)") {
		t.Errorf("warning %q", warnings.String())
	}
}

func TestCheck(t *testing.T) {
	sec := netsectest.New(t)
	t.Setenv("NETSEC_TEST_TOKEN", sec.Token)
	for _, cfg := range []netsec.Config{{TokenFile: sec.TokenFile}, {TokenEnv: "NETSEC_TEST_TOKEN"}} {
		s, err := netsec.New(cfg, "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Check(netsec.Secret(sec.Token)); err != nil {
			t.Errorf("%+v: the right token refused: %v", cfg, err)
		}
		if err := s.Check(""); !errors.Is(err, netsec.ErrNoToken) {
			t.Errorf("no token: %v", err)
		}
		for _, wrong := range []string{sec.Token[:len(sec.Token)-1], sec.Token + "x", strings.ToLower(sec.Token)} {
			if err := s.Check(netsec.Secret(wrong)); !errors.Is(err, netsec.ErrWrongToken) {
				t.Errorf("wrong token: %v", err)
			}
		}
		if n := s.Summary()["refused_token"]; n != int64(4) {
			t.Errorf("refused_token %v, want 4", n)
		}
	}
	open, _ := netsec.New(netsec.Config{}, "tcp", "127.0.0.1:0")
	if err := open.Check("anything-at-all-here"); err != nil || open.TokenRequired() {
		t.Errorf("a sink without a token refused one: %v", err)
	}
}

// A Secret prints as [redacted] whatever the verb, and in JSON.
func TestSecretIsNotPrinted(t *testing.T) {
	c := netsec.Client{CAFile: "ca.pem", Token: "s3cr3t-t0ken-value"}
	js, _ := json.Marshal(c)
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%+v %#v %s %q", c, c, c.Token, c.Token), string(js)} {
		if strings.Contains(out, "s3cr3t") || !strings.Contains(out, "[redacted]") {
			t.Errorf("printed %s", out)
		}
	}
}
