package arrowsocket

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"pipeline/sink/netsec"
)

// The wire protocol, one connection per rank (docs/transport.md has the full description):
//
//	consumer -> producer   "PIPELINE/1 rank=R world=W\n" or "PIPELINE/1 rank=R world=W token=T\n"
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

// Hello is a consumer's handshake. The token is optional (a producer without one ignores it),
// so PIPELINE/1 consumers that send none still work with producers that require none.
type Hello struct {
	Rank, World int
	Token       netsec.Secret
}

// line is the handshake as sent, token included: for the wire only (String redacts it).
func (h Hello) line() string {
	s := fmt.Sprintf("%s rank=%d world=%d", protocolName, h.Rank, h.World)
	if h.Token != "" {
		s += " token=" + string(h.Token)
	}
	return s + "\n"
}

func (h Hello) String() string {
	if h.Token != "" {
		h.Token = netsec.Secret(h.Token.String())
	}
	return h.line()
}

// parseHello reads "PIPELINE/1 rank=R world=W [token=T]". Its errors quote the line with
// every value but rank's and world's blanked out, so that no token reaches a log or summary.
func parseHello(line string) (Hello, error) {
	fields := strings.Fields(line)
	if len(fields) < 3 || len(fields) > 4 || fields[0] != protocolName {
		return Hello{}, fmt.Errorf("handshake %q: want %q", redactLine(line), "PIPELINE/1 rank=R world=W [token=T]")
	}
	var h Hello
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		name, value, _ := strings.Cut(f, "=")
		if name != "rank" && name != "world" && name != "token" {
			return Hello{}, fmt.Errorf("handshake %q: unknown field", redactLine(line))
		}
		if seen[name] {
			return Hello{}, fmt.Errorf("handshake %q: %s given twice", redactLine(line), name)
		}
		seen[name] = true
		if name == "token" {
			h.Token = netsec.Secret(value)
			continue
		}
		n, err := strconv.Atoi(value)
		if err != nil {
			return Hello{}, fmt.Errorf("handshake %q: %s is not a number", redactLine(line), name)
		}
		if name == "rank" {
			h.Rank = n
		} else {
			h.World = n
		}
	}
	if !seen["rank"] || !seen["world"] {
		return Hello{}, fmt.Errorf("handshake %q: want %q", redactLine(line), "PIPELINE/1 rank=R world=W [token=T]")
	}
	return h, nil
}

// redactLine blanks out every word of a handshake line but the first and the values of rank
// and world: a mistyped line may hold a token anywhere.
func redactLine(line string) string {
	fields := strings.Fields(line)
	for i, f := range fields {
		name, value, _ := strings.Cut(f, "=")
		if i == 0 {
			if len(f) > 16 {
				fields[i] = f[:16] + "..."
			}
			continue
		}
		if _, err := strconv.Atoi(value); err == nil && (name == "rank" || name == "world") {
			continue
		}
		if strings.Contains(f, "=") && len(name) <= 16 {
			fields[i] = name + "=..."
		} else {
			fields[i] = "..."
		}
	}
	return strings.Join(fields, " ")
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
