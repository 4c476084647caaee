package arrowsocket

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The wire protocol, one connection per rank (docs/transport.md has the full description):
//
//	consumer -> producer   "PIPELINE/1 rank=R world=W\n"
//	producer -> consumer   "ok\n"  or  "error MESSAGE\n" and close
//	producer -> consumer   an Arrow IPC stream: schema, this rank's batches, end-of-stream
//	producer -> consumer   "end ok batches=N\n"  or  "end error MESSAGE\n"
//
// The trailer is what tells a clean end from an aborted run: plain Arrow readers stop at the
// end-of-stream marker and never see it, so any Arrow IPC reader can read the batches.
const (
	protocolName = "PIPELINE/1"
	maxLineBytes = 512 // handshake and trailer lines
)

// Hello is a consumer's handshake.
type Hello struct {
	Rank, World int
}

func (h Hello) String() string {
	return fmt.Sprintf("%s rank=%d world=%d\n", protocolName, h.Rank, h.World)
}

// parseHello reads "PIPELINE/1 rank=R world=W".
func parseHello(line string) (Hello, error) {
	fields := strings.Fields(line)
	if len(fields) != 3 || fields[0] != protocolName {
		return Hello{}, fmt.Errorf("handshake %q: want %q", line, "PIPELINE/1 rank=R world=W")
	}
	var h Hello
	for _, f := range fields[1:] {
		name, value, _ := strings.Cut(f, "=")
		n, err := strconv.Atoi(value)
		if err != nil {
			return Hello{}, fmt.Errorf("handshake %q: %s is not a number", line, name)
		}
		switch name {
		case "rank":
			h.Rank = n
		case "world":
			h.World = n
		default:
			return Hello{}, fmt.Errorf("handshake %q: unknown field %q", line, name)
		}
	}
	return h, nil
}

// readLine reads one '\n'-terminated line of at most maxLineBytes, without the newline. It
// reads one byte at a time so that nothing after the line is consumed.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	var c [1]byte
	for b.Len() < maxLineBytes {
		if _, err := io.ReadFull(r, c[:]); err != nil {
			if errors.Is(err, io.EOF) && b.Len() > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if c[0] == '\n' {
			return b.String(), nil
		}
		b.WriteByte(c[0])
	}
	return "", fmt.Errorf("line longer than %d bytes", maxLineBytes)
}

// readLineBuffered is readLine for a bufio.Reader, which may read ahead.
func readLineBuffered(r *bufio.Reader) (string, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull || len(line) > maxLineBytes:
		return "", fmt.Errorf("line longer than %d bytes", maxLineBytes)
	case err == io.EOF && len(line) > 0:
		return "", io.ErrUnexpectedEOF
	case err != nil:
		return "", err
	}
	return string(line[:len(line)-1]), nil
}

// oneLine keeps a message on one line of the protocol.
func oneLine(msg string) string {
	msg = strings.ReplaceAll(msg, "\n", " ")
	if len(msg) > maxLineBytes-16 {
		msg = msg[:maxLineBytes-16]
	}
	return msg
}
