// Package s3test starts a real S3 server for tests, versitygw (installed by
// scripts/versitygw.sh into .tools/bin), on 127.0.0.1 over a temporary folder, and puts
// objects into it with boto3 from the project's .venv, so that what the Go reader is tested on
// was written by an independent client. Under CI=true a missing versitygw or boto3 fails the
// test instead of skipping it.
package s3test

import (
	_ "embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"pipeline/internal/repo"
)

//go:embed s3tool.py
var s3tool string

// Server is a running versitygw.
type Server struct {
	Endpoint       string // http://127.0.0.1:PORT
	Access, Secret string
	python         string
	t              testing.TB
}

// Missing skips the test, or fails it under CI=true, for a tool that is not installed.
func Missing(t testing.TB, what string) {
	t.Helper()
	msg := what + " is not installed: run scripts/deps.sh (make deps)"
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and " + msg)
	}
	t.Skip(msg)
}

// Python is the .venv interpreter when it imports every module, else it skips or fails.
func Python(t testing.TB, modules ...string) string {
	t.Helper()
	py := filepath.Join(repo.TestRoot(t), ".venv/bin/python")
	args := []string{"-c", "import sys"}
	for _, m := range modules {
		args[1] += "; import " + m
	}
	if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		Missing(t, fmt.Sprintf("%v in .venv (%v: %s)", modules, err, out))
	}
	return py
}

// Start starts versitygw on a free port and sets the AWS environment variables (endpoint,
// credentials, region) for the test, so that both boto3 and the Go reader find the server as
// users' tools would.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := filepath.Join(repo.TestRoot(t), ".tools/bin/versitygw")
	if _, err := os.Stat(bin); err != nil {
		Missing(t, "versitygw (.tools/bin/versitygw)")
	}
	py := Python(t, "boto3")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{Endpoint: "http://" + addr, Access: "testaccess", Secret: "testsecret0123456789", python: py, t: t}
	cmd := exec.Command(bin, "--access", s.Access, "--secret", s.Secret, "--port", addr, "posix", t.TempDir())
	logs := &lockedTail{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s within 20s: %s", addr, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_S3": s.Endpoint, "AWS_ACCESS_KEY_ID": s.Access, "AWS_SECRET_ACCESS_KEY": s.Secret,
		"AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		t.Setenv(k, v)
	}
	return s
}

// MakeBucket creates a bucket with boto3.
func (s *Server) MakeBucket(bucket string) { s.tool("mkbucket", bucket) }

// Put uploads local files with boto3: keysAndFiles is key, file, key, file...
func (s *Server) Put(bucket string, keysAndFiles ...string) {
	s.tool(append([]string{"put", bucket}, keysAndFiles...)...)
}

func (s *Server) tool(args ...string) {
	s.t.Helper()
	cmd := exec.Command(s.python, append([]string{"-c", s3tool}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("boto3 %v: %v: %s", args[:2], err, out)
	}
}

// lockedTail keeps the server's output for an error message.
type lockedTail struct {
	mu  sync.Mutex
	buf []byte
}

func (l *lockedTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if len(l.buf) > 8<<10 {
		l.buf = l.buf[len(l.buf)-8<<10:]
	}
	return len(p), nil
}

func (l *lockedTail) String() string { l.mu.Lock(); defer l.mu.Unlock(); return string(l.buf) }
