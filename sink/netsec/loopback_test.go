package netsec

import "testing"

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:0": true, "[::1]:7000": true, "localhost:7000": true, "127.1.2.3:1": true,
		":7000": false, "0.0.0.0:7000": false, "[::]:7000": false, "10.1.2.3:7000": false, "bad": false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
