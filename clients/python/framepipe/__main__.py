"""Command line: ``python3 -m framepipe IMAGE|DIR|VIDEO|CAMERA_INDEX ... --endpoint tcp://...``.

Writes one JSON line per reply (to ``--out`` or stdout), shows progress on stderr when it is a
terminal, and ends with a summary: count, errors by code, skipped frames (latest-frame mode, on
by default for cameras: ``--latest``/``--no-latest``), images/s. Exit status: 0 all ok (skipped
frames included), 1 some error replies, 2 no reply in time (ClientTimeout) or bad arguments, 130 Ctrl-C.
"""
from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any, Iterator, Sequence, Union

import zmq

from .media import infer_video, list_images
from .pipelined import PipelinedClient, Request
from .protocol import Reply, is_skipped

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m framepipe", description="Send images, folders or videos through a framepipe pipeline.")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE|DIR|VIDEO", help="image files, folders of images, video files, or a camera index (0)")
    parser.add_argument("-e", "--endpoint", default=os.environ.get("FRAMEPIPE_ENDPOINT", "tcp://127.0.0.1:5555"), help="ingest endpoint (default $FRAMEPIPE_ENDPOINT or tcp://127.0.0.1:5555)")
    parser.add_argument("-o", "--out", type=Path, help="write the replies here as JSON lines (default: stdout)")
    parser.add_argument("-w", "--inflight", type=int, default=8, help="requests in flight at once (default 8)")
    parser.add_argument("-t", "--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    parser.add_argument("--raw", action="store_true", help="send decoded BGR pixels instead of encoded images (fast local links)")
    parser.add_argument("--shared-memory", action="store_true", help="same host as ingest: hand each image over as a file in /dev/shm instead of sending its bytes")
    parser.add_argument(
        "--latest",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="latest-frame mode for videos and cameras: frames the pipeline has no time for come back SKIPPED, so results stay live "
        "(default: on for a camera, off for a video file; a file in latest mode is read at its own frame rate)",
    )
    args = parser.parse_args(argv)
    if args.inflight < 1:
        parser.error("--inflight must be at least 1")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


Source = Union[int, Path, "list[Path]"]
"""A camera index, a video file, or image files to send as one pipelined run."""


def plan(inputs: Sequence[str]) -> list[Source]:
    """Checks every input before anything is sent; consecutive images and folders share one run."""
    sources: list[Source] = []
    for name in inputs:
        path = Path(name)
        if name.isdigit() and not path.exists():
            sources.append(int(name))
        elif path.is_dir() or (path.is_file() and path.suffix.lower() not in VIDEO_SUFFIXES):
            files = list_images(path) if path.is_dir() else [path]
            if sources and isinstance(sources[-1], list):
                sources[-1].extend(files)
            else:
                sources.append(files)
        elif path.is_file():
            sources.append(path)
        else:
            raise FileNotFoundError(f"{name}: no such file or folder")
    return sources


def replies(client: PipelinedClient, sources: list[Source], raw: bool, latest: bool | None = None) -> Iterator[tuple[dict[str, Any], Reply]]:
    """(where it came from, reply) for every image and video frame, in input order.

    ``latest`` None: latest-frame mode for cameras (live), not for video files (every frame wanted).
    """
    for source in sources:
        if isinstance(source, list):
            requests = (Request(_read_image(path, raw), tag=path) for path in source)
            for request, reply in client.map(requests, ordered=True, raw=raw):
                yield {"file": str(request.tag)}, reply
        else:
            live = isinstance(source, int) if latest is None else latest
            for _frame, reply in infer_video(client, source, raw=raw, latest=live):
                yield {}, reply


def _read_image(path: Path, raw: bool) -> Any:
    """The file's bytes, or with ``raw`` its pixels (the bytes still, if OpenCV cannot read it: the server then says why)."""
    if raw:
        import cv2

        pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if pixels is not None:
            return pixels
    return path.read_bytes()


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class Progress:
    """Counts replies by outcome; redraws one status line on a terminal at most 5 times a second.

    SKIPPED replies (latest-frame mode) are counted apart: they are not errors.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.start = time.monotonic()
        self.count = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.skipped = 0
        self._drawn = 0.0

    def add(self, reply: Reply) -> None:
        self.count += 1
        if is_skipped(reply):
            self.skipped += 1
        elif not reply.get("ok"):
            self.errors[reply.get("error", {}).get("code", "?")] += 1
        now = time.monotonic()
        if self.live and now - self._drawn >= 0.2:
            self._drawn = now
            self.stream.write(f"\r{self.count} image(s), {sum(self.errors.values())} error(s), {self.rate():.1f} images/s")
            self.stream.flush()

    def rate(self) -> float:
        return self.count / max(time.monotonic() - self.start, 1e-9)

    def summary(self) -> str:
        total = sum(self.errors.values())
        by_code = " (" + ", ".join(f"{code} {n}" for code, n in sorted(self.errors.items())) + ")" if total else ""
        skipped = f", {self.skipped} skipped (newer frame processed)" if self.skipped else ""
        return f"{self.count} image(s), {total} error(s){by_code}{skipped}, {self.rate():.1f} images/s"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sources = plan(args.inputs)
    except FileNotFoundError as err:
        print(f"framepipe: {err}", file=sys.stderr)
        return 2
    progress = Progress(sys.stderr)
    out = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
    status = 0
    try:
        with PipelinedClient(args.endpoint, window=args.inflight, timeout=args.timeout, shared_memory=args.shared_memory) as client:
            for source, reply in replies(client, sources, args.raw, args.latest):
                out.write(json.dumps({**source, **reply}, default=_json_default) + "\n")
                progress.add(reply)
    except OSError as err:  # ClientTimeout (a TimeoutError), or a video OpenCV cannot open
        print(f"\rframepipe: {err}", file=sys.stderr)
        status = 2
    except zmq.ZMQError as err:  # a malformed endpoint
        print(f"framepipe: endpoint {args.endpoint!r}: {err}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:  # the way to end a camera run: still print the summary
        status = 130
    finally:
        if out is not sys.stdout:
            out.close()
    print(("\r" if progress.live else "") + progress.summary(), file=sys.stderr)
    return status or (1 if progress.errors else 0)


if __name__ == "__main__":
    sys.exit(main())
