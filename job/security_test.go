package job

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"pipeline/sink/arrowsocket"
	"pipeline/sink/netsec"
	"pipeline/sink/netsec/netsectest"
)

// The sink block's security keys reach the socket sink: a run on every interface with TLS and
// a token serves the consumer that has both, refuses one with a wrong token before it claims
// the rank, and its summary counts the refusal. Without them the config is refused.
func TestSecuredSocketSinkCountsRefusals(t *testing.T) {
	sec := netsectest.New(t)
	t.Setenv("PIPELINE_JOB_TEST_TOKEN", sec.Token)
	block := fmt.Sprintf("sink:\n  kind: arrow-socket\n  path: tcp://0.0.0.0:0\n  world_size: 1\n  close_timeout: 10s\n"+
		"  tls_cert_file: %s\n  tls_key_file: %s\n  token_env: PIPELINE_JOB_TEST_TOKEN\n", sec.Cert, sec.Key)
	j := build(t, exampleYAML(t)+block)
	if _, err := build(t, exampleYAML(t)+"sink:\n  kind: arrow-socket\n  path: tcp://0.0.0.0:0\n").Run(context.Background(), Options{}); err == nil || !strings.Contains(err.Error(), "insecure: true") {
		t.Fatalf("a plain sink on every interface: %v", err)
	}
	snk, err := openSink(j, j.sinkKind)
	if err != nil {
		t.Fatal(err)
	}
	// It listens on every interface: reach it on loopback, which its certificate names.
	_, where, _ := arrowsocket.ParseAddress(snk.(*arrowsocket.Sink).Address())
	_, port, _ := net.SplitHostPort(where)
	addr := "tcp+tls://127.0.0.1:" + port
	rows := make(chan int64, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		wrong := arrowsocket.Dialer{Security: netsec.Client{CAFile: sec.CA, Token: netsec.Secret(sec.Token + "x")}}
		if r, err := wrong.Dial(ctx, addr, 0, 1); err == nil {
			r.Close()
			t.Error("a wrong token was accepted")
		}
		right := arrowsocket.Dialer{Security: netsec.Client{CAFile: sec.CA, Token: netsec.Secret(sec.Token)}}
		r, err := right.Dial(ctx, addr, 0, 1)
		if err != nil {
			t.Error(err)
			rows <- 0
			return
		}
		defer r.Close()
		var n int64
		for r.Next() {
			n += r.RecordBatch().NumRows()
		}
		if r.Err() != nil {
			t.Error(r.Err())
		}
		rows <- n
	}()
	sum, err := j.Run(context.Background(), Options{Sink: snk})
	if err != nil {
		t.Fatal(err)
	}
	if n := <-rows; n != sum.Emitted || n == 0 {
		t.Errorf("the consumer read %d rows of %d", n, sum.Emitted)
	}
	if sum.Sink["refused_token"] != int64(1) || sum.Sink["tls"] != true {
		t.Errorf("summary's sink: %v", sum.Sink)
	}
}
