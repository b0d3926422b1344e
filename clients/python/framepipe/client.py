"""The one-image-at-a-time client: a REQ socket with the Lazy Pirate pattern.

A REQ socket whose reply is lost is stuck for good (ZeroMQ's REQ state machine waits for that
reply forever), so every receive is a poll with a deadline; on timeout the socket is closed with
linger 0 and a fresh one connected before the next attempt.
"""
from __future__ import annotations

import itertools
from types import TracebackType
from typing import Any

import zmq

from .curve import CurveKeys
from .errors import ClientTimeout, check
from .protocol import DEFAULT_JPEG_QUALITY, ImageInput, Pixels, Reply, RequestId, SharedFiles, decode_reply, encode_request

REPLY_GRACE = 0.25
"""Seconds to wait past the request's deadline: the server answers TIMEOUT at the deadline itself,
so this margin lets that reply arrive rather than racing it with a client-side timeout."""


class Client:
    """Sends one image at a time and waits for its reply.

    ``timeout`` (seconds) is sent as the request's deadline (``timeout_ms``) and bounds each wait;
    ``retries`` more attempts follow a wait with no reply, each on a new socket, before
    ClientTimeout. Retries resend the image, so only a lost reply costs double work.

    ``shared_memory`` (a client on ingest's host only): each image is written to a file in
    /dev/shm and only its name is sent (header ``shm``, docs/protocol.md); ingest takes the file
    over. The client deletes whatever file is left once the request is done.

    Error replies raise the FramepipeError of their code (BadImage, Overloaded, …) unless
    ``raise_on_error`` is false, in which case they are returned as dicts with ``ok`` false.
    A SKIPPED reply (latest-frame mode) is not an error and is always returned.
    Not thread-safe (ZeroMQ sockets are not): use one Client per thread.
    """

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:5555",
        *,
        timeout: float = 30.0,
        retries: int = 2,
        raise_on_error: bool = True,
        context: zmq.Context | None = None,
        curve: CurveKeys | None = None,
        shared_memory: bool = False,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        self.raise_on_error = raise_on_error
        self._context = context or zmq.Context.instance()
        self.curve = curve
        self._files = SharedFiles() if shared_memory else None
        self._ids = itertools.count(1)
        self._socket: zmq.Socket | None = self._connect()

    def infer(
        self,
        image: ImageInput,
        *,
        id: RequestId | None = None,
        stream: str | None = None,
        frame: int | None = None,
        annotate: bool | None = None,
        min_score: float | None = None,
        max_detections: int | None = None,
        latest: bool | None = None,
        timeout: float | None = None,
        raw: bool = False,
        pixels: Pixels = "bgr",
        jpeg_quality: int = DEFAULT_JPEG_QUALITY,
    ) -> Reply:
        """Sends ``image`` (bytes, a path, or a numpy array) and returns its reply.

        Arrays are JPEG-encoded unless ``raw`` is true (then sent as uncompressed pixels in the
        order ``pixels`` names). ``timeout`` overrides the client's for this request.
        ``latest`` (needs ``stream``) asks for latest-frame mode: if a newer frame of the stream
        arrives while this one waits, the reply is SKIPPED (returned, never raised; ``is_skipped``).
        """
        if self._socket is None:
            raise RuntimeError("client is closed")
        wait = self.timeout if timeout is None else timeout
        header: dict[str, Any] = {
            "id": next(self._ids) if id is None else id,
            "stream": stream,
            "frame": frame,
            "timeout_ms": max(1, round(wait * 1000)),
            "annotate": annotate,
            "min_score": min_score,
            "max_detections": max_detections,
            "latest": latest,
        }
        options: dict[str, Any] = {"raw": raw, "pixels": pixels, "jpeg_quality": jpeg_quality}
        frames: list[bytes | memoryview] = [] if self._files else encode_request(image, header, **options)
        files: list[str] = []
        attempts = self.retries + 1
        try:
            for _ in range(attempts):
                if self._files:
                    # A file per attempt: ingest may have taken the last one over already.
                    frames, name = self._files.request(image, header, **options)
                    if name:
                        files.append(name)
                if self._send(self._socket, frames) and self._socket.poll(round((wait + REPLY_GRACE) * 1000), zmq.POLLIN):
                    reply = decode_reply(self._socket.recv())
                    return check(reply) if self.raise_on_error else reply
                # Lazy Pirate: this REQ socket now waits for a reply that may never come; replace it.
                self._socket.close(linger=0)
                self._socket = self._connect()
        finally:
            for name in files:
                self._files.remove(name)  # type: ignore[union-attr]
        raise ClientTimeout(self.endpoint, wait, attempts, header["id"])

    def close(self) -> None:
        """Closes the socket at once (linger 0): unsent requests are dropped, nothing blocks."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._files:
            self._files.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @staticmethod
    def _send(socket: zmq.Socket, frames: list[bytes | memoryview]) -> bool:
        """False when the request could not even be queued within the timeout (ZMQ_SNDTIMEO)."""
        try:
            socket.send_multipart(frames, copy=False)
            return True
        except zmq.Again:
            return False

    def _connect(self) -> zmq.Socket:
        socket = self._context.socket(zmq.REQ)
        socket.setsockopt(zmq.LINGER, 0)
        if self.curve:
            self.curve.apply(socket)
        # ZMQ_SNDTIMEO, ms: a send that cannot be queued fails instead of blocking forever.
        socket.setsockopt(zmq.SNDTIMEO, round(self.timeout * 1000))
        socket.connect(self.endpoint)
        return socket
