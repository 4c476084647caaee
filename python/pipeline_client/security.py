"""TLS and the shared-secret token for the socket and Flight sinks (docs/transport.md, Security).

A tcp+tls:// or grpc+tls:// address is dialled with TLS and the server's certificate checked
against ca_file (a self-made CA), or the system's roots without one. The token goes in the
socket handshake (`token=`) or as gRPC metadata `authorization: Bearer <token>`. Where the
caller gives none, PIPELINE_TOKEN, PIPELINE_TOKEN_FILE and PIPELINE_CA_FILE are read, so a
script started by torchrun needs no code for it. The token is never part of a message or repr.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field

TOKEN_ENV = "PIPELINE_TOKEN"
TOKEN_FILE_ENV = "PIPELINE_TOKEN_FILE"
CA_FILE_ENV = "PIPELINE_CA_FILE"
MIN_TOKEN, MAX_TOKEN = 16, 256  # as the producer's netsec.ValidToken


@dataclass(frozen=True)
class Credentials:
    token: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    server_name: str | None = None  # checked in the server's certificate instead of the host


def validate_token(token: str) -> str:
    """The token, if it fits a handshake line: printable ASCII without spaces, 16 to 256 long."""
    if not MIN_TOKEN <= len(token) <= MAX_TOKEN:
        raise ValueError(f"token has {len(token)} characters, want {MIN_TOKEN} to {MAX_TOKEN}")
    for i, c in enumerate(token):
        if not "!" <= c <= "~":
            raise ValueError(f"token character {i + 1} is not printable ASCII (or is a space)")
    return token


def resolve(token: str | None = None, token_file: str | None = None, ca_file: str | None = None,
            server_name: str | None = None) -> Credentials:
    """Credentials from the arguments, else from the environment (see the module's doc)."""
    if token is not None and token_file is not None:
        raise ValueError("token and token_file: give one of them")
    if token is None and token_file is None:
        token = os.environ.get(TOKEN_ENV) or None
        token_file = None if token else os.environ.get(TOKEN_FILE_ENV) or None
    if token_file is not None:
        with open(token_file, encoding="ascii") as f:
            token = f.read()
    if token is not None:
        token = validate_token(token.strip())
    return Credentials(token=token, ca_file=ca_file or os.environ.get(CA_FILE_ENV) or None,
                       server_name=server_name)


def check_scheme(address, creds: Credentials) -> None:
    """A CA file given for a plain address is a mistake: the stream would not be encrypted."""
    if creds.ca_file and not address.tls:
        raise ValueError(f"{address}: a CA file is for tcp+tls:// and grpc+tls:// addresses; this one is not TLS")


def ssl_context(creds: Credentials) -> ssl.SSLContext:
    """A client context verifying the server's certificate and host name."""
    ctx = ssl.create_default_context(cafile=creds.ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def flight_headers(creds: Credentials) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", b"Bearer " + creds.token.encode())] if creds.token else []
