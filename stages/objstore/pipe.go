package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// pipeBackend runs a command (WebDataset's pipe:COMMAND, through sh -c) and streams its
// standard output. It reads once, from the start: a fault ends the shard.
type pipeBackend struct {
	command string
	started bool
}

func (p *pipeBackend) resumable() bool { return false }

func (p *pipeBackend) stat(context.Context) (objectInfo, error) { return objectInfo{size: -1}, nil }

func (p *pipeBackend) get(ctx context.Context, off int64, _ objectInfo) (io.ReadCloser, error) {
	if off != 0 || p.started {
		return nil, permanent{fmt.Errorf("pipe:%s: a pipe can only be read once, from its start", p.command)}
	}
	p.started = true
	cmd := exec.CommandContext(ctx, "sh", "-c", p.command)
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, permanent{err}
	}
	if err := cmd.Start(); err != nil {
		return nil, permanent{fmt.Errorf("pipe:%s: %w", p.command, err)}
	}
	return &pipeBody{r: out, cmd: cmd, stderr: stderr}, nil
}

// pipeBody is a command's output; Close waits for the command and reports a failed exit with
// the end of its standard error.
type pipeBody struct {
	r      io.Reader
	cmd    *exec.Cmd
	stderr *tailBuffer
	closed bool
}

func (b *pipeBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *pipeBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if err := b.cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return permanent{fmt.Errorf("command %q: %w: %s", b.cmd.Args[2], err, strings.TrimSpace(b.stderr.String()))}
		}
		return permanent{err}
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.buf.String() }
