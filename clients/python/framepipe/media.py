"""Folders, videos, cameras and drawing: the helpers around PipelinedClient.

numpy and OpenCV are imported inside the functions that need them, so ``import framepipe`` works
with pyzmq and msgpack alone.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Union

from .pipelined import PipelinedClient, Request
from .protocol import Reply

if TYPE_CHECKING:
    import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".avif", ".bmp"})
"""What infer_folder picks up: the formats the server decodes (the same list as `framepipe infer`)."""


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders numbers by value, so frame2 comes before frame10 (like the Node CLI)."""
    return tuple(int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", name))


def list_images(folder: Union[str, os.PathLike[str]]) -> list[Path]:
    """The image files directly in ``folder``, in natural order."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


def infer_folder(
    client: PipelinedClient,
    folder: Union[str, os.PathLike[str]],
    *,
    ordered: bool = True,
    **options: Any,
) -> Iterator[tuple[Path, Reply]]:
    """Sends every image of ``folder`` and yields ``(path, reply)``, in natural file order by default.

    ``ordered=False`` yields replies as they complete instead (faster when sizes vary a lot).
    ``options`` are PipelinedClient.submit()'s keyword arguments.
    """
    requests = (Request(path, tag=path) for path in list_images(folder))
    for request, reply in client.map(requests, ordered=ordered, **options):
        yield request.tag, reply


def infer_video(
    client: PipelinedClient,
    source: Union[str, os.PathLike[str], int],
    *,
    stream: str | None = None,
    ordered: bool | None = None,
    raw: bool = False,
    latest: bool = False,
    realtime: bool | None = None,
    **options: Any,
) -> Iterator[tuple[np.ndarray, Reply]]:
    """Reads a video file or camera (an int: OpenCV's device index) frame by frame and yields ``(frame, reply)``.

    Frames are JPEG-encoded (``raw=True``: sent as BGR pixels) with ``stream`` (default: the file's
    name or ``camera<N>``) and ``frame`` numbered from 0, both echoed in the reply. Up to
    ``client.window`` frames are in flight while the next are read, so a camera keeps its frame
    rate as long as the pipeline keeps up.

    ``latest=True`` is for live sources that send faster than the pipeline serves: latest-frame
    mode (docs/protocol.md), where the server processes the newest frame and answers the frames
    it had no time for with SKIPPED replies (``is_skipped(reply)``; yielded, not raised) at once.
    Results then stay fresh instead of falling ever further behind the camera. With it, replies
    come as they complete (``ordered`` defaults to ``not latest``), and ``realtime`` (default: on
    in latest mode) reads a file at its own frame rate, the way a camera would deliver it.
    """
    import cv2

    capture = cv2.VideoCapture(source if isinstance(source, int) else os.fspath(source))
    if not capture.isOpened():
        raise OSError(f"OpenCV cannot open {'camera' if isinstance(source, int) else 'video'} {source!r}")
    name = stream or (f"camera{source}" if isinstance(source, int) else Path(source).name)
    # A camera delivers frames at its own pace already; a file would be read as fast as the disk allows.
    pace = not isinstance(source, int) and (latest if realtime is None else realtime)
    fps = capture.get(cv2.CAP_PROP_FPS) if pace else 0.0
    interval = 1.0 / fps if fps and fps > 0 else 0.0

    def frames() -> Iterator[Request]:
        number = 0
        start = time.monotonic()
        while True:
            if interval:
                time.sleep(max(0.0, start + number * interval - time.monotonic()))
            ok, frame = capture.read()
            if not ok:
                return
            yield Request(frame, stream=name, frame=number, tag=frame)
            number += 1

    if latest:
        options["latest"] = True
    try:
        for request, reply in client.map(frames(), ordered=not latest if ordered is None else ordered, raw=raw, **options):
            yield request.tag, reply
    finally:
        capture.release()


def draw(frame: np.ndarray, reply: Reply, *, color: tuple[int, int, int] = (0, 200, 0)) -> np.ndarray:
    """Draws a reply's boxes (text polygons where present) and labels on ``frame``, in place; returns it.

    A label is the recognised text for OCR regions, else the class name, the classifier's top guess
    and the score. A failure reply gets its error code written in the corner, so a live view shows
    why a frame has no boxes (a SKIPPED frame too: a live view usually just keeps the last result).
    """
    import cv2
    import numpy as np

    if not reply.get("ok"):
        code = reply.get("error", {}).get("code", "ERROR")
        cv2.putText(frame, str(code), (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 255), 2, cv2.LINE_AA)
        return frame
    for det in reply.get("detections", []):
        x1, y1, x2, y2 = (int(round(v)) for v in det["box"])
        if "polygon" in det:
            points = np.array(det["polygon"], dtype=np.int32).reshape(-1, 1, 2)
            cv2.polylines(frame, [points], True, color, 2, cv2.LINE_AA)
        else:
            cv2.rectangle(frame, (x1, y1), (x2, y2), color, 2)
        if "text" in det:
            label = det["text"]
        else:
            top = det.get("classes") or []
            label = f"{det['label']} {top[0]['label']}" if top else det["label"]
            label = f"{label} {det['score']:.2f}"
        (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        y = max(y1, h + base + 2)
        cv2.rectangle(frame, (x1, y - h - base - 2), (x1 + w + 2, y), color, cv2.FILLED)
        cv2.putText(frame, label, (x1 + 1, y - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return frame
