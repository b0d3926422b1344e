"""The pipelined client: a DEALER socket with up to ``window`` requests in flight.

One request at a time leaves the pipeline's stages idle while the reply travels back; keeping a few
in flight overlaps transport with work (decode, detect and classify run in separate processes).
Replies are matched to requests by ``id``, so they may complete in any order. A DEALER is never
stuck by a lost reply the way a REQ is: each request has its own deadline, and a reply arriving
after its request was given up on is dropped.
"""
from __future__ import annotations

import collections
import itertools
import math
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Iterable, Iterator, TypeVar

import zmq

from .client import REPLY_GRACE
from .curve import CurveKeys
from .errors import ClientTimeout
from .protocol import DEFAULT_JPEG_QUALITY, ImageInput, Pixels, Reply, RequestId, SharedFiles, decode_reply, encode_request

I = TypeVar("I")


@dataclass(frozen=True)
class Request:
    """An image with the header fields that differ per image, for ``PipelinedClient.map``.

    ``tag`` is anything of yours (a path, the decoded frame) handed back beside the reply.
    """

    image: ImageInput
    stream: str | None = None
    frame: int | None = None
    tag: Any = None


@dataclass(frozen=True)
class _InFlight:
    deadline: float
    timeout: float
    file: str | None = None
    """The request's image file in /dev/shm (``shared_memory``), deleted when the request is done."""


class PipelinedClient:
    """Keeps up to ``window`` requests in flight on one DEALER socket.

    Two ways to use it:

    - ``map(images)`` sends an iterable of images, keeping the window full, and yields
      ``(item, reply)`` as replies complete (``ordered=True``: in the order given, e.g. video frames).
    - ``submit(image)`` returns the request's id at once (waiting only while the window is full);
      ``next_reply()`` / ``as_completed()`` return replies as they complete, each with its ``id``.

    Replies are dicts, failures included (``ok`` false with ``error.code``), and so are latest-frame
    mode's SKIPPED replies (``is_skipped(reply)``): one bad frame should not end a stream; ``framepipe.check(reply)`` raises for those who prefer exceptions. A request
    with no reply ``timeout`` seconds (+ a small grace) after it was sent raises ClientTimeout
    from whichever call is waiting, so nothing ever blocks for longer than that.

    ``shared_memory`` (a client on ingest's host only): each image goes into a file in /dev/shm
    and only its name is sent (header ``shm``, docs/protocol.md); ingest takes the file over, and
    whatever file is left when a request is done is deleted here.
    Not thread-safe (ZeroMQ sockets are not).
    """

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:5555",
        *,
        window: int = 8,
        timeout: float = 30.0,
        context: zmq.Context | None = None,
        curve: CurveKeys | None = None,
        shared_memory: bool = False,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.endpoint = endpoint
        self.window = window
        self.timeout = timeout
        self._files = SharedFiles() if shared_memory else None
        self.dropped = 0
        """Replies that came after their request had timed out on this side (or had an unknown id)."""
        self._ids = itertools.count(1)
        self._inflight: dict[RequestId, _InFlight] = {}
        self._done: collections.deque[Reply] = collections.deque()
        self._socket: zmq.Socket | None = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        # ZMQ_SNDTIMEO, ms: a send that cannot be queued fails instead of blocking forever.
        self._socket.setsockopt(zmq.SNDTIMEO, round(timeout * 1000))
        if curve:
            curve.apply(self._socket)
        self._socket.connect(endpoint)

    @property
    def inflight(self) -> int:
        """Requests sent and not yet answered (nor timed out)."""
        return len(self._inflight)

    def submit(
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
    ) -> RequestId:
        """Sends one image and returns its id (yours, or the next integer).

        ``latest`` (needs ``stream``): latest-frame mode, where a frame that a newer one of its
        stream replaces while waiting is answered SKIPPED (a reply like any other; ``is_skipped``).

        While the window is full this first waits for a reply, kept for ``next_reply()``; so it
        may raise ClientTimeout for an earlier request.
        """
        if id is not None and id in self._inflight:
            raise ValueError(f"id {id!r} is already in flight")
        while len(self._inflight) >= self.window:
            self._done.append(self._receive())
        return self._send(
            image,
            id=id,
            stream=stream,
            frame=frame,
            annotate=annotate,
            min_score=min_score,
            max_detections=max_detections,
            latest=latest,
            timeout=timeout,
            raw=raw,
            pixels=pixels,
            jpeg_quality=jpeg_quality,
        )

    def next_reply(self) -> Reply:
        """The next reply to complete, whichever request it answers; ClientTimeout if one expires first."""
        if self._done:
            return self._done.popleft()
        if not self._inflight:
            raise RuntimeError("no request in flight: submit() first")
        return self._receive()

    def as_completed(self) -> Iterator[Reply]:
        """Yields the replies of every submitted request, as they complete."""
        while self._done or self._inflight:
            yield self.next_reply()

    def map(
        self,
        items: Iterable[I],
        *,
        ordered: bool = False,
        **options: Any,
    ) -> Iterator[tuple[I, Reply]]:
        """Sends every item (an image, or a Request with per-image fields), ``window`` at a time.

        Yields ``(item, reply)`` as replies complete, or in the order of ``items`` when ``ordered``;
        then at most ``window`` replies wait in memory for a slow one ahead of them. Items are read
        lazily, so a video or camera can be an endless generator. ``options`` are submit()'s
        keyword arguments (annotate, timeout, raw, …), applied to every item.
        """
        if self._done or self._inflight:
            raise RuntimeError("map() needs a client with nothing in flight")
        if "id" in options:
            raise TypeError("map() numbers its requests itself; use submit() to choose ids")
        source = iter(items)
        tags: dict[RequestId, tuple[int, I]] = {}
        waiting: dict[int, tuple[I, Reply]] = {}
        sent = yielded = 0
        exhausted = False
        try:
            while True:
                # Ordered replies held back still count against the window, which bounds memory.
                while not exhausted and sent - yielded < self.window:
                    item = next(source, _END)
                    if item is _END:
                        exhausted = True
                        break
                    if isinstance(item, Request):
                        rid = self._send(item.image, stream=item.stream, frame=item.frame, **options)
                    else:
                        rid = self._send(item, **options)  # type: ignore[arg-type]
                    tags[rid] = (sent, item)
                    sent += 1
                if exhausted and yielded == sent:
                    return
                reply = self._receive()
                seq, item = tags.pop(reply["id"])
                if not ordered:
                    yielded += 1
                    yield item, reply
                    continue
                waiting[seq] = (item, reply)
                while yielded in waiting:
                    yielded += 1
                    yield waiting.pop(yielded - 1)
        finally:
            # Stopped early (break, exception, ClientTimeout): forget the rest, drop their replies later.
            for rid in tags:
                self._forget(rid)

    def close(self) -> None:
        """Closes the socket at once (linger 0); requests in flight are abandoned."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        for rid in list(self._inflight):
            self._forget(rid)
        if self._files:
            self._files.close()

    def __enter__(self) -> PipelinedClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _send(
        self,
        image: ImageInput,
        *,
        id: RequestId | None = None,
        timeout: float | None = None,
        raw: bool = False,
        pixels: Pixels = "bgr",
        jpeg_quality: int = DEFAULT_JPEG_QUALITY,
        **fields: Any,
    ) -> RequestId:
        """Sends one request and starts its deadline; ``fields`` are header fields (None: left out)."""
        if self._socket is None:
            raise RuntimeError("client is closed")
        rid = next(self._ids) if id is None else id
        wait = self.timeout if timeout is None else timeout
        header = {"id": rid, "timeout_ms": max(1, round(wait * 1000)), **fields}
        options: dict[str, Any] = {"raw": raw, "pixels": pixels, "jpeg_quality": jpeg_quality}
        file = None
        if self._files:
            frames, file = self._files.request(image, header, **options)
        else:
            frames = encode_request(image, header, **options)
        try:
            # The empty delimiter makes the envelope REQ-shaped; the reply comes back as [b"", reply].
            self._socket.send_multipart([b"", *frames], copy=False)
        except BaseException as err:
            if file:
                self._files.remove(file)  # type: ignore[union-attr]
            if isinstance(err, zmq.Again):
                raise ClientTimeout(self.endpoint, wait, request_id=rid) from None
            raise
        self._inflight[rid] = _InFlight(time.monotonic() + wait + REPLY_GRACE, wait, file)
        return rid

    def _forget(self, rid: RequestId, reply: Reply | None = None) -> _InFlight | None:
        """Done with a request (answered, timed out, abandoned): its shared-memory file, if any is left, goes.

        An ok reply means ingest took the file over (the job went through the pipeline): nothing to delete.
        """
        entry = self._inflight.pop(rid, None)
        if entry is not None and entry.file and self._files and not (reply and reply.get("ok")):
            self._files.remove(entry.file)
        return entry

    def _receive(self) -> Reply:
        """Waits for the reply of any request in flight, or raises ClientTimeout for the first to expire."""
        if self._socket is None:
            raise RuntimeError("client is closed")
        while True:
            rid, first = min(self._inflight.items(), key=lambda kv: kv[1].deadline)
            left = first.deadline - time.monotonic()
            if left <= 0 or not self._socket.poll(math.ceil(left * 1000), zmq.POLLIN):
                self._forget(rid)
                raise ClientTimeout(self.endpoint, first.timeout, request_id=rid)
            reply = decode_reply(self._socket.recv_multipart()[-1])
            if self._forget(reply.get("id"), reply) is not None:  # type: ignore[arg-type]
                return reply
            self.dropped += 1


_END: Any = object()
