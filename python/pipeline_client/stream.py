"""One rank's record batches from a socket sink or a Flight sink, as pyarrow RecordBatches."""

from __future__ import annotations

import errno
import json
import time
from typing import Iterator

import pyarrow as pa

from . import protocol, security
from .protocol import StreamAborted


def open_batches(address: str, rank: int = 0, world: int = 1, timeout: float = 60.0, *,
                 token: str | None = None, token_file: str | None = None,
                 ca_file: str | None = None) -> Iterator[pa.RecordBatch]:
    """Yields rank's batches in order: batch i of the stream for every i with i % world == rank.

    address is unix:///path, tcp://host:port (socket sink) or grpc://host:port (Flight sink).
    Connecting is retried for up to timeout seconds, so the producer may start later. The
    generator raises StreamAborted if the stream does not end cleanly; leaving it early (break,
    close) disconnects, which the producer treats as a lost consumer and fails its run.
    Batches read from a socket are zero-copy views of the bytes read from it.
    tcp+tls:// and grpc+tls:// addresses use TLS, trusting ca_file (else the system's roots);
    token or token_file is the producer's shared secret. Without them PIPELINE_TOKEN,
    PIPELINE_TOKEN_FILE and PIPELINE_CA_FILE are read (security.py).
    """
    return _without_metadata(open_batches_with_metadata(address, rank, world, timeout, token=token,
                                                        token_file=token_file, ca_file=ca_file))


def _without_metadata(it: Iterator[tuple[pa.RecordBatch, dict[str, str]]]) -> Iterator[pa.RecordBatch]:
    try:
        for batch, _ in it:
            yield batch
    finally:
        it.close()  # leaving early disconnects now, not when the garbage collector gets to it


def open_batches_with_metadata(address: str, rank: int = 0, world: int = 1, timeout: float = 60.0, *,
                               token: str | None = None, token_file: str | None = None,
                               ca_file: str | None = None) -> Iterator[tuple[pa.RecordBatch, dict[str, str]]]:
    """open_batches, each batch with its metadata: where it leaves the stream
    (pipeline.batch, pipeline.position, pipeline.round_start; docs/arrow-schema.md), empty for a
    producer that sends none. The socket sink sends it as IPC message metadata, the Flight sink
    as the message's app_metadata (a JSON object)."""
    addr = protocol.parse_address(address)
    creds = security.resolve(token=token, token_file=token_file, ca_file=ca_file)
    security.check_scheme(addr, creds)
    if addr.scheme == "grpc":
        return _flight_batches(addr, rank, world, timeout, creds)
    return _socket_batches(addr, rank, world, timeout, creds)


def _socket_batches(addr: protocol.Address, rank: int, world: int, timeout: float,
                    creds: security.Credentials) -> Iterator[tuple[pa.RecordBatch, dict[str, str]]]:
    sock, f = protocol.connect(addr, rank, world, timeout, creds)
    try:
        try:
            reader = pa.ipc.open_stream(f)
        except (pa.ArrowException, OSError) as e:
            raise StreamAborted(f"{addr}: rank {rank}: no stream: {e}") from e
        n = 0
        while True:
            try:
                batch, md = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            except (pa.ArrowException, OSError) as e:
                raise StreamAborted(f"{addr}: rank {rank}: after {n} batches: {e}") from e
            n += 1
            yield batch, _decode(md)
        protocol.check_trailer(f, n)
    finally:
        f.close()
        sock.close()


def _decode(md) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in md.items()} if md else {}


def _flight_batches(addr: protocol.Address, rank: int, world: int, timeout: float,
                    creds: security.Credentials) -> Iterator[tuple[pa.RecordBatch, dict[str, str]]]:
    import pyarrow.flight as flight  # only Flight users need it

    ticket = flight.Ticket(f"rank={rank}/world={world}".encode())
    tls = {}
    if creds.ca_file:
        with open(creds.ca_file, "rb") as f:
            tls["tls_root_certs"] = f.read()
    if creds.server_name:
        tls["override_hostname"] = creds.server_name
    # pyarrow's Flight client accepts messages of any size: no limit to raise, unlike Go's.
    client = flight.connect(str(addr), **tls)
    options = flight.FlightCallOptions(headers=security.flight_headers(creds))
    n = 0
    reader = chunk = None
    try:
        reader, chunk = _first_chunk(flight, client, ticket, options, addr, rank, timeout)
        while chunk is not None:
            n += 1
            yield chunk.data, json.loads(chunk.app_metadata.to_pybytes()) if chunk.app_metadata else {}
            chunk = _read_chunk(reader)
    except flight.FlightUnauthenticatedError as e:  # no token or a wrong one: refused before the rank
        raise protocol.HandshakeRefused(f"{addr}: rank {rank} of {world}: {e}") from e
    except flight.FlightError as e:  # ABORTED (a failed run), UNAVAILABLE (producer gone), ...
        raise StreamAborted(f"{addr}: rank {rank}: after {n} batches: {e}") from e
    except pa.ArrowInvalid as e:  # the producer's FAILED_PRECONDITION: it refused the ticket
        if n == 0:
            raise protocol.HandshakeRefused(f"{addr}: rank {rank} of {world}: {e}") from e
        raise StreamAborted(f"{addr}: rank {rank}: after {n} batches: {e}") from e
    finally:
        if reader is not None and chunk is not None:
            # Left before the end: client.close() cancels no call in Arrow C++, so end this
            # one, and the producer sees its consumer gone instead of blocking on the stream.
            reader.cancel()
        client.close()


def _first_chunk(flight, client, ticket, options, addr, rank, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            reader = client.do_get(ticket, options)
            return reader, _read_chunk(reader)
        except flight.FlightUnavailableError as e:
            # Not listening yet: nothing was claimed, so trying again is safe. A failed TLS
            # handshake is unavailable too, but waiting will not mend it. Given up on a refused
            # connection, it is the error a socket address gives, not gRPC's page about its
            # channel; anything else (a plain client at a TLS port: "Socket closed") stays.
            if _tls_failure(str(e)):
                raise
            if time.monotonic() > deadline:
                if "refused" not in str(e).lower():
                    raise
                raise ConnectionRefusedError(errno.ECONNREFUSED, f"Connection refused: no producer at {addr} "
                                             f"after {timeout}s (rank {rank})") from e
            time.sleep(0.1)


def _tls_failure(message: str) -> bool:
    return any(s in message.lower() for s in ("ssl", "handshake", "certificate", "tls"))


def _read_chunk(reader):
    try:
        return reader.read_chunk()
    except StopIteration:
        return None
