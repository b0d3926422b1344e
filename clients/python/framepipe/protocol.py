"""Protocol v1 on the client side: what a request's frames hold and what a reply looks like.

docs/protocol.md is the contract; this module is the one place the Python client builds request
frames, so both clients (REQ and DEALER) send exactly the same bytes. numpy and OpenCV are imported
only when an array is sent, so sending encoded bytes needs nothing beyond msgpack.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import tempfile
from typing import TYPE_CHECKING, Any, Literal, Mapping, TypedDict, Union

import msgpack

if TYPE_CHECKING:
    import numpy as np

Pixels = Literal["bgr", "rgb", "gray"]
RequestId = Union[str, int]
ImageInput = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", "np.ndarray"]
"""Encoded image bytes, a path to an image file, or a uint8 numpy array (h×w or h×w×c)."""


class ClassScore(TypedDict):
    label: str
    score: float


class Detection(TypedDict, total=False):
    box: list[float]
    score: float
    label: str
    polygon: list[list[float]]
    text: str
    text_score: float
    classes: list[ClassScore]


class ErrorInfo(TypedDict):
    code: str
    message: str


class SupersededBy(TypedDict, total=False):
    id: RequestId | None
    frame: int


class Reply(TypedDict, total=False):
    """One reply, exactly the msgpack map of docs/protocol.md (``ok`` tells which keys are present).

    A SKIPPED reply (latest-frame mode) has ``ok`` false, ``skipped`` true and ``superseded_by``;
    test it with ``is_skipped(reply)``.
    """

    id: RequestId | None
    ok: bool
    width: int
    height: int
    detections: list[Detection]
    timings_ms: dict[str, float]
    stream: str
    frame: int
    annotated: bytes
    error: ErrorInfo
    skipped: bool
    superseded_by: SupersededBy


SKIPPED = "SKIPPED"
"""``error.code`` of a skipped frame in latest-frame mode. Not an error: a newer frame of the same
stream was processed instead, as the request asked (``latest=True``)."""


def is_skipped(reply: Mapping[str, Any]) -> bool:
    """True for latest-frame mode's SKIPPED reply: a newer frame of the stream replaced this one."""
    return reply.get("skipped") is True


DEFAULT_JPEG_QUALITY = 90


def encode_request(
    image: ImageInput,
    header: dict[str, Any],
    *,
    raw: bool = False,
    pixels: Pixels = "bgr",
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
) -> list[bytes | memoryview]:
    """The request body ``[header, image]`` for one image.

    ``header`` holds the protocol fields (id, stream, frame, timeout_ms, …); fields set to None are
    left out, so the server applies its defaults. Arrays go as JPEG unless ``raw`` is true: JPEG is
    ~10× smaller on the wire, raw skips the encode/decode cost on a fast local link.
    """
    payload, fields = _payload(image, header, raw=raw, pixels=pixels, jpeg_quality=jpeg_quality)
    return [msgpack.packb(fields), payload]


SHARED_BASE = "/dev/shm"


class SharedFiles:
    """A client's images as files in /dev/shm, for ingest on the same host (header ``shm``).

    One private directory (0700: other users cannot list the names) per client, made on first use,
    and a new randomly named file in it per image; ingest takes each file over (moves it, no copy).
    ``remove`` after a reply deletes a file ingest did not take (a request answered before its job
    went in: OVERLOADED, SKIPPED, BAD_REQUEST); ``close`` removes the directory and what is left.
    """

    def __init__(self) -> None:
        self._dir: str | None = None
        self._pid = os.getpid()

    def request(
        self,
        image: ImageInput,
        header: dict[str, Any],
        *,
        raw: bool = False,
        pixels: Pixels = "bgr",
        jpeg_quality: int = DEFAULT_JPEG_QUALITY,
    ) -> tuple[list[bytes | memoryview], str | None]:
        """The request body ``[header]`` naming the image's new file, and that name; when the file
        cannot be written (/dev/shm full) ``[header, image]`` as usual, and None."""
        payload, fields = _payload(image, header, raw=raw, pixels=pixels, jpeg_quality=jpeg_quality)
        name = self._write(payload)
        if name is None:
            return [msgpack.packb(fields), payload], None
        fields["shm"] = name
        return [msgpack.packb(fields)], name

    def remove(self, name: str) -> None:
        try:
            os.unlink(os.path.join(SHARED_BASE, name))
        except FileNotFoundError:
            pass  # taken over by ingest: the usual case

    def close(self) -> None:
        if self._dir is not None and self._pid == os.getpid():  # never a parent's directory, in a forked child
            shutil.rmtree(os.path.join(SHARED_BASE, self._dir), ignore_errors=True)
            self._dir = None

    def _write(self, payload: bytes | memoryview) -> str | None:
        name = None
        opened = False
        try:
            if self._dir is None or self._pid != os.getpid():
                # A forked child gets a directory of its own: the parent's names the parent's pid.
                self._dir = _make_dir()
                self._pid = os.getpid()
            name = f"{self._dir}/{secrets.token_hex(12)}"
            # O_EXCL: a new file, never one someone else made; 0600: only this user reads it.
            fd = os.open(os.path.join(SHARED_BASE, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            opened = True
            try:
                view = memoryview(payload).cast("B")
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            return name
        except OSError:
            # Only a file this call made: never someone else's under the same name (O_EXCL refused).
            if opened and name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(SHARED_BASE, name))
            return None


def _make_dir() -> str:
    """A new 0700 directory for this process's images, with this host's name and pid namespace in
    ``owner``: if the process dies before close(), an ingest on this host and in this pid
    namespace removes it (the pid is in the directory's name)."""
    folder = tempfile.mkdtemp(prefix=f"framepipe-client-{os.getpid()}-", dir=SHARED_BASE)
    owner = socket.gethostname()
    with contextlib.suppress(OSError):
        owner += "\n" + os.readlink("/proc/self/ns/pid")
    try:
        fd = os.open(os.path.join(folder, "owner"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, owner.encode())
        finally:
            os.close(fd)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return os.path.basename(folder)


def _payload(
    image: ImageInput, header: dict[str, Any], *, raw: bool, pixels: Pixels, jpeg_quality: int
) -> tuple[bytes | memoryview, dict[str, Any]]:
    """The image's bytes and the header's fields (None values left out, raw-array fields added)."""
    fields = {k: v for k, v in header.items() if v is not None}
    if isinstance(image, (bytes, bytearray, memoryview)):
        payload: bytes | memoryview = bytes(image) if isinstance(image, bytearray) else image
    elif isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as f:
            payload = f.read()
    else:
        payload, extra = _encode_array(image, raw=raw, pixels=pixels, jpeg_quality=jpeg_quality)
        fields.update(extra)
    if len(payload) == 0:
        raise ValueError("empty image")
    return payload, fields


def _encode_array(array: Any, *, raw: bool, pixels: Pixels, jpeg_quality: int) -> tuple[bytes | memoryview, dict[str, Any]]:
    """JPEG bytes (no extra header fields), or the raw array with its ``shape``/``dtype``/``pixels`` fields."""
    import numpy as np

    if not isinstance(array, np.ndarray):
        raise TypeError(f"image must be bytes, a path or a numpy array, not {type(array).__name__}")
    if array.dtype != np.uint8:
        raise ValueError(f"image array must be uint8, not {array.dtype}")
    channels = 1 if array.ndim == 2 else array.shape[2] if array.ndim == 3 else 0
    if channels not in (1, 3):
        raise ValueError(f"image array must be h×w or h×w×c with c = 1 or 3, not shape {array.shape}")
    if (pixels == "gray" and channels != 1) or (pixels == "rgb" and channels != 3):
        raise ValueError(f"pixels '{pixels}' does not fit shape {array.shape}")
    if raw:
        order = "gray" if channels == 1 else pixels
        data = np.ascontiguousarray(array)
        return memoryview(data).cast("B"), {"shape": list(array.shape), "dtype": "uint8", "pixels": order}
    import cv2

    if channels == 3 and pixels == "rgb":
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, jpeg = cv2.imencode(".jpg", array, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise ValueError(f"OpenCV could not JPEG-encode an array of shape {array.shape}")
    return jpeg.tobytes(), {}


def decode_reply(frame: bytes) -> Reply:
    """A reply frame as a dict (plain msgpack, no extension types)."""
    reply = msgpack.unpackb(frame)
    if not isinstance(reply, dict):
        raise ValueError("reply is not a msgpack map")
    return reply  # type: ignore[return-value]
