package flight

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"pipeline/sink/arrowsocket/batchtest"
	"pipeline/sink/netsec"
	"pipeline/sink/netsec/netsectest"
)

// Clients without TLS, without trust in the server, without the token or with a wrong one
// are refused before DoGet claims a rank: the real clients then get every batch of ranks 0
// and 1, and the summary counts the refusals without showing the token.
func TestIntrudersAreRefusedBeforeClaimingARank(t *testing.T) {
	sec := netsectest.New(t)
	s, mem := listen(t, Config{World: 2, Security: netsec.Config{
		TLSCertFile: sec.Cert, TLSKeyFile: sec.Key, TokenFile: sec.TokenFile}})
	if !strings.HasPrefix(s.Address(), "grpc+tls://127.0.0.1:") {
		t.Fatalf("address %s, want grpc+tls://", s.Address())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want := map[string]struct {
		code codes.Code
		msg  string
	}{
		"plain":                 {codes.Unavailable, ""},
		"untrusted certificate": {codes.Unavailable, "certificate signed by unknown authority"},
		"no token":              {codes.Unauthenticated, netsec.ErrNoToken.Error()},
		"wrong token":           {codes.Unauthenticated, "wrong token"},
	}
	for _, in := range sec.Intruders() {
		addr := s.Address()
		if in.Plain {
			addr = strings.Replace(addr, "grpc+tls://", "grpc://", 1)
		}
		c, err := Dialer{Security: in.Client}.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		w := want[in.Name]
		for rank := range 2 {
			r, err := ReadRank(ctx, c, rank, 2)
			if err == nil {
				r.Release()
				t.Fatalf("%s: rank %d accepted", in.Name, rank)
			}
			if status.Code(err) != w.code || !strings.Contains(err.Error(), w.msg) || strings.Contains(err.Error(), sec.Token) {
				t.Errorf("%s: %v, want %s %q (and no token)", in.Name, err, w.code, w.msg)
			}
		}
		c.Close()
	}
	// gRPC retries a failed connection, so TLS refusals are at least one per client.
	summary := netsectest.WaitSummary(s.Summary, func(m map[string]any) bool { return m["refused_tls"].(int64) >= 2 })
	if summary["refused_token"] != int64(4) || summary["refused_tls"].(int64) < 2 || summary["tls"] != true {
		t.Errorf("summary %v: want 4 refused for the token, 2 or more for TLS", summary)
	}
	batchtest.CheckRanks(t, s, mem, small, 2, 9, func(rank int) ([]int, error) {
		return readAllWith(ctx, Dialer{Security: sec.Good()}, s.Address(), rank, 2, small)
	})
	if js, _ := json.Marshal(s.Summary()); strings.Contains(strings.ToLower(string(js)), strings.ToLower(sec.Token)) {
		t.Errorf("the summary shows the token: %s", js)
	}
}

// A token without TLS works on loopback (the token guards against other users of the
// machine); a CA file with a plain address is a mistake, refused.
func TestTokenOnLoopbackWithoutTLS(t *testing.T) {
	sec := netsectest.New(t)
	s, mem := listen(t, Config{World: 1, Security: netsec.Config{TokenFile: sec.TokenFile}})
	batchtest.CheckRanks(t, s, mem, small, 1, 3, func(rank int) ([]int, error) {
		return readAllWith(context.Background(), Dialer{Security: netsec.Client{Token: netsec.Secret(sec.Token)}}, s.Address(), rank, 1, small)
	})
	if _, err := (Dialer{Security: netsec.Client{CAFile: sec.CA}}).Dial(s.Address()); err == nil || !strings.Contains(err.Error(), "a CA file is for grpc+tls://") {
		t.Errorf("CA file with grpc://: %v", err)
	}
	if _, err := New(Config{Path: "0.0.0.0:0"}); err == nil || !strings.Contains(err.Error(), "insecure: true") {
		t.Errorf("plain sink on 0.0.0.0: %v", err)
	}
}
