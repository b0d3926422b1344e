"""CURVE keys for clients of a pipeline that runs with ``security.curve`` (docs/security.md).

Key files are the ones ``framepipe keygen`` writes: one key per line, ``#`` comments, a line is a
bare Z85 key or ``public_key=KEY`` / ``secret_key=KEY``; NAME.public holds the public key,
NAME.secret both keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zmq

_LABELS = ("public_key", "secret_key")


def _read(path: str | Path) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {"public_key": [], "secret_key": [], "bare": []}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        label, _, value = line.partition("=")
        # Z85 has '=' in its alphabet: only a known name before '=' is a label.
        slot, key = (label.strip(), value.strip()) if label.strip() in _LABELS and value else ("bare", line)
        if len(key) != 40:
            raise ValueError(f"{path}:{number}: not a CURVE key (40 Z85 characters)")
        keys[slot].append(key)
    return keys


def _key(value: str, want: str) -> str:
    """A Z85 key given as text, or ``@path`` to a key file."""
    if not value.startswith("@"):
        if len(value) != 40:
            raise ValueError(f"{want}: not a CURVE key (40 Z85 characters, or @path to a key file)")
        return value
    keys = _read(value[1:])
    found = keys[want] or (keys["bare"] if want == "public_key" or len(keys["bare"]) == 1 else [])
    if not found:
        raise ValueError(f"no {want.replace('_', ' ')} in {value[1:]}")
    return found[0]


@dataclass(frozen=True)
class CurveKeys:
    """The server's public key and this client's key pair, all Z85."""

    server_public: str
    public: str
    secret: str

    @classmethod
    def load(cls, server_key: str, key_file: str | Path) -> "CurveKeys":
        """``server_key`` as Z85 or ``@server.public``; ``key_file`` this client's NAME.secret."""
        keys = _read(key_file)
        if not keys["secret_key"] or not keys["public_key"]:
            raise ValueError(f"{key_file}: a .secret file from framepipe keygen holds public_key= and secret_key=")
        return cls(_key(server_key, "public_key"), keys["public_key"][0], keys["secret_key"][0])

    def apply(self, socket: zmq.Socket) -> None:
        """Sets ZMQ_CURVE_SERVERKEY/PUBLICKEY/SECRETKEY; call before connect()."""
        socket.curve_serverkey = self.server_public.encode("ascii")
        socket.curve_publickey = self.public.encode("ascii")
        socket.curve_secretkey = self.secret.encode("ascii")
