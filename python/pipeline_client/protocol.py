"""The socket sink's wire protocol (docs/transport.md), in pure Python: no pyarrow needed.

    consumer -> producer   b"PIPELINE/1 rank=R world=W\\n"  or  b"PIPELINE/1 rank=R world=W token=T\\n"
    producer -> consumer   b"ok\\n"  or  b"error MESSAGE\\n" and close
    producer -> consumer   an Arrow IPC stream: schema, this rank's batches, end-of-stream
    producer -> consumer   b"end ok batches=N\\n"  or  b"end error MESSAGE\\n"

A tcp+tls:// address runs all of it inside TLS (the stdlib ssl module), see security.py.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass
from typing import BinaryIO

from . import security

PROTOCOL = "PIPELINE/1"
MAX_LINE = 512


class HandshakeRefused(ConnectionError):
    """The producer refused this rank (wrong world size, rank taken, no or a wrong token, ...)."""


class StreamAborted(RuntimeError):
    """The stream did not end cleanly: the producer failed, or the connection was lost."""


@dataclass(frozen=True)
class Address:
    """A parsed producer address (parse_address); str() gives it back."""

    scheme: str  # "unix", "tcp" or "grpc"
    path: str = ""  # unix
    host: str = ""  # tcp, grpc
    port: int = 0
    tls: bool = False  # tcp+tls://, grpc+tls://

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal
        return f"{self.scheme}{'+tls' if self.tls else ''}://{host}:{self.port}"


def parse_address(text: str) -> Address:
    """Reads unix:///path/to.sock, tcp://host:port or grpc://host:port, and tcp+tls:// and
    grpc+tls:// for their TLS forms."""
    scheme, sep, rest = text.partition("://")
    if sep and scheme == "unix" and rest:
        return Address("unix", path=rest)
    if sep and scheme in ("tcp", "tcp+tls", "grpc", "grpc+tcp", "grpc+tls"):
        m = re.fullmatch(r"\[?([^\]]*)\]?:(\d+)", rest)
        if m:
            return Address("grpc" if scheme.startswith("grpc") else "tcp", host=m.group(1), port=int(m.group(2)),
                           tls=scheme.endswith("+tls"))
    raise ValueError(f"address {text!r}: want unix:///path/to.sock, tcp://host:port or grpc://host:port "
                     "(tcp+tls://, grpc+tls:// with TLS)")


def hello(rank: int, world: int, token: str | None = None) -> bytes:
    """The consumer's handshake line (with the shared-secret token when one is given)."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} of world size {world}: want 0 <= rank < world")
    line = f"{PROTOCOL} rank={rank} world={world}"
    if token:
        line += f" token={security.validate_token(token)}"
    return f"{line}\n".encode()


def read_line(f: BinaryIO) -> str:
    """One protocol line from a binary file object, without the newline."""
    line = f.readline(MAX_LINE + 1)
    if not line.endswith(b"\n"):
        if not line:
            raise EOFError("connection closed")
        raise ValueError(f"protocol line too long or cut: {line[:80]!r}")
    return line[:-1].decode("utf-8", "replace")


def check_answer(line: str) -> None:
    """Raises HandshakeRefused unless the producer's answer is "ok"."""
    if line == "ok":
        return
    raise HandshakeRefused(line.removeprefix("error ").strip() or line)


def check_trailer(f: BinaryIO, batches_read: int) -> None:
    """Reads the trailer after the end-of-stream marker; raises StreamAborted unless it says
    the stream is complete and the batch count matches."""
    try:
        line = read_line(f)
    except (EOFError, ValueError, OSError) as e:
        raise StreamAborted(f"no trailer after {batches_read} batches ({e}): producer gone or run failed") from e
    if line.startswith("end error "):
        raise StreamAborted(f"producer failed after {batches_read} batches: {line[len('end error '):]}")
    m = re.fullmatch(r"end ok batches=(\d+)", line)
    if not m:
        raise StreamAborted(f"bad trailer {line!r}")
    if int(m.group(1)) != batches_read:
        raise StreamAborted(f"producer sent {m.group(1)} batches, {batches_read} arrived")


def connect(address: Address, rank: int, world: int, timeout: float = 60.0,
            credentials: security.Credentials | None = None) -> tuple[socket.socket, BinaryIO]:
    """Connects and handshakes; returns (socket, buffered binary file) positioned at the
    Arrow stream. Retries while the producer is not listening yet, up to timeout seconds.
    A tcp+tls:// address gets TLS, the server's certificate checked against
    credentials.ca_file; credentials.token goes in the handshake."""
    creds = credentials or security.Credentials()
    security.check_scheme(address, creds)
    line = hello(rank, world, creds.token)
    deadline = time.monotonic() + timeout
    while True:
        if address.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = address.path
        elif address.scheme == "tcp":
            sock = socket.socket(socket.AF_INET6 if ":" in address.host else socket.AF_INET, socket.SOCK_STREAM)
            target = (address.host, address.port)
        else:
            raise ValueError(f"{address}: not a socket address")
        try:
            sock.connect(target)
            break
        except (FileNotFoundError, ConnectionRefusedError) as e:
            sock.close()
            if time.monotonic() > deadline:
                raise type(e)(e.errno, f"{e.strerror}: no producer at {address} after {timeout}s (rank {rank})") from e
            time.sleep(0.1)
    try:
        if address.tls:
            # A certificate the CA file (or the system) does not vouch for raises
            # ssl.SSLCertVerificationError here, before anything is sent.
            sock = security.ssl_context(creds).wrap_socket(sock, server_hostname=creds.server_name or address.host)
        sock.sendall(line)
        f = sock.makefile("rb", buffering=1 << 16)
        try:
            answer = read_line(f)
        except (EOFError, ValueError) as e:
            raise HandshakeRefused(f"{address}: rank {rank}: no answer to the handshake ({e})") from e
        check_answer(answer)
    except BaseException:
        sock.close()
        raise
    return sock, f
