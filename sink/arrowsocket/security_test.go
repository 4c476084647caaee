package arrowsocket

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"pipeline/sink/arrowsocket/batchtest"
	"pipeline/sink/netsec"
	"pipeline/sink/netsec/netsectest"
)

// securedConfig is a TLS + token sink on loopback with a world of 2.
func securedConfig(sec netsectest.Secured) Config {
	return Config{Path: "tcp://127.0.0.1:0", World: 2, Security: netsec.Config{
		TLSCertFile: sec.Cert, TLSKeyFile: sec.Key, TokenFile: sec.TokenFile}}
}

// Clients without TLS, without trust in the server, without the token or with a wrong one
// are refused before they claim a rank: the real consumers then get every batch of ranks 0
// and 1, and the summary counts the refusals without showing the token anywhere.
func TestIntrudersAreRefusedBeforeClaimingARank(t *testing.T) {
	sec := netsectest.New(t)
	s, mem := listen(t, securedConfig(sec))
	if !strings.HasPrefix(s.Address(), "tcp+tls://127.0.0.1:") {
		t.Fatalf("address %s, want tcp+tls://", s.Address())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want := map[string]string{
		"plain":                 "refused: this producer serves TLS: connect to " + s.Address(),
		"untrusted certificate": "certificate signed by unknown authority",
		"no token":              "refused: " + netsec.ErrNoToken.Error(),
		"wrong token":           "refused: wrong token",
	}
	for _, in := range sec.Intruders() {
		addr := s.Address()
		if in.Plain {
			addr = strings.Replace(addr, "tcp+tls://", "tcp://", 1)
		}
		for rank := range 2 {
			r, err := Dialer{Security: in.Client}.Dial(ctx, addr, rank, 2)
			if err == nil {
				r.Close()
				t.Fatalf("%s: rank %d accepted", in.Name, rank)
			}
			if !strings.Contains(err.Error(), want[in.Name]) || strings.Contains(err.Error(), sec.Token) {
				t.Errorf("%s: %v, want %q (and no token)", in.Name, err, want[in.Name])
			}
		}
	}
	// The server sees an untrusting client's handshake fail after the client gave up.
	summary := netsectest.WaitSummary(s.Summary, func(m map[string]any) bool { return m["refused_tls"] == int64(4) })
	if summary["refused_token"] != int64(4) || len(summary["refused"].([]string)) != 8 || summary["tls"] != true || summary["token_required"] != true {
		t.Errorf("summary %v: want 4 refused for the token, 4 for TLS, 8 listed", summary)
	}
	batchtest.CheckRanks(t, s, mem, small, 2, 9, func(rank int) ([]int, error) {
		return readAllWith(ctx, Dialer{Security: sec.Good()}, s.Address(), rank, 2, small)
	})
	js, _ := json.Marshal(s.Summary())
	if strings.Contains(string(js), sec.Token) || strings.Contains(string(js), strings.ToLower(sec.Token)) {
		t.Errorf("the summary shows the token: %s", js)
	}
}

// A mistyped handshake holding the token is refused without quoting it.
func TestBadHandshakeDoesNotEchoTheToken(t *testing.T) {
	sec := netsectest.New(t)
	s, _ := listen(t, Config{Path: "tcp://127.0.0.1:0", World: 1, Security: netsec.Config{TokenFile: sec.TokenFile}})
	for _, line := range []string{
		"PIPELINE/1 rank=0 world=1 token=" + sec.Token + " extra",
		"PIPELINE/1 rank=0 world=1 tokn=" + sec.Token,
		"PIPELINE/1 rank=0 world=1 " + sec.Token,
		"PIPELINE/1 rank=" + sec.Token + " world=1",
		sec.Token + " rank=0 world=1",
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.Address(), "tcp://"))
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(line + "\n"))
		answer, _ := readLine(conn)
		conn.Close()
		if !strings.HasPrefix(answer, "error handshake") || strings.Contains(answer, sec.Token[4:]) {
			t.Errorf("answer to %q: %q", line, answer)
		}
	}
	js, _ := json.Marshal(s.Summary())
	if strings.Contains(string(js), sec.Token[4:]) {
		t.Errorf("the summary shows the token: %s", js)
	}
	// With the token in place, the same producer serves the rank.
	r, err := Dialer{Security: netsec.Client{Token: netsec.Secret(sec.Token)}}.Dial(context.Background(), s.Address(), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

// Only a producer that requires none accepts consumers without a token, and a consumer that
// sends one anyway (PIPELINE/1 consumers on either side keep working).
func TestTokenIsOptionalWhereNotRequired(t *testing.T) {
	s, _ := listen(t, Config{Path: "tcp://127.0.0.1:0", World: 2})
	for rank, token := range []netsec.Secret{"", "a-token-nobody-asked-for"} {
		r, err := Dialer{Security: netsec.Client{Token: token}}.Dial(context.Background(), s.Address(), rank, 2)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
}

func TestListeningBeyondLoopbackNeedsTLSAndToken(t *testing.T) {
	if _, err := New(Config{Path: "tcp://0.0.0.0:0"}); err == nil || !strings.Contains(err.Error(), "insecure: true") {
		t.Fatalf("plain sink on 0.0.0.0: %v", err)
	}
	if _, err := New(Config{Path: "tcp+tls://127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "needs tls_cert_file") {
		t.Fatalf("tcp+tls:// without a certificate: %v", err)
	}
	sec := netsectest.New(t)
	cfg := securedConfig(sec)
	cfg.Path = "tcp://0.0.0.0:0"
	s, _ := listen(t, cfg)
	if w := s.Summary()["security_warnings"].([]string); len(w) != 0 {
		t.Errorf("warnings %q", w)
	}
}

// The security keys sit in the sink block beside the others.
func TestSecurityConfigFromYAML(t *testing.T) {
	src := "path: tcp://0.0.0.0:7000\ntls_cert_file: /etc/p/server.pem\ntls_key_file: /etc/p/server-key.pem\n" +
		"token_env: PIPELINE_TOKEN\ninsecure: false\n"
	var cfg Config
	if err := yaml.UnmarshalWithOptions([]byte(src), &cfg, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	want := Config{Path: "tcp://0.0.0.0:7000", Security: netsec.Config{TLSCertFile: "/etc/p/server.pem",
		TLSKeyFile: "/etc/p/server-key.pem", TokenEnv: "PIPELINE_TOKEN"}}
	if cfg != want {
		t.Fatalf("decoded %+v, want %+v", cfg, want)
	}
}
