"""Folders, videos, cameras and drawing: the helpers around PipelinedClient.

numpy and OpenCV are imported inside the functions that need them, so ``import framepipe`` works
with pyzmq and msgpack alone.
"""
from __future__ import annotations

import os
import re
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
    ordered: bool = True,
    raw: bool = False,
    **options: Any,
) -> Iterator[tuple[np.ndarray, Reply]]:
    """Reads a video file or camera (an int: OpenCV's device index) frame by frame and yields ``(frame, reply)``.

    Frames are JPEG-encoded (``raw=True``: sent as BGR pixels) with ``stream`` (default: the file's
    name or ``camera<N>``) and ``frame`` numbered from 0, both echoed in the reply. By default
    replies come in frame order; up to ``client.window`` frames are in flight while the next are
    read, so a camera keeps its frame rate as long as the pipeline keeps up.
    """
    import cv2

    capture = cv2.VideoCapture(source if isinstance(source, int) else os.fspath(source))
    if not capture.isOpened():
        raise OSError(f"OpenCV cannot open {'camera' if isinstance(source, int) else 'video'} {source!r}")
    name = stream or (f"camera{source}" if isinstance(source, int) else Path(source).name)

    def frames() -> Iterator[Request]:
        number = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield Request(frame, stream=name, frame=number, tag=frame)
            number += 1

    try:
        for request, reply in client.map(frames(), ordered=ordered, raw=raw, **options):
            yield request.tag, reply
    finally:
        capture.release()


def draw(frame: np.ndarray, reply: Reply, *, color: tuple[int, int, int] = (0, 200, 0)) -> np.ndarray:
    """Draws a reply's boxes (text polygons where present) and labels on ``frame``, in place; returns it.

    A label is the recognised text for OCR regions, else the class name, the classifier's top guess
    and the score. A failure reply gets its error code written in the corner, so a live view shows
    why a frame has no boxes.
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
