"""Fixtures: real pipelines (`node bin/framepipe.js start`) on free loopback ports, and test images.

Every pipeline is started as its own process group and always stopped (SIGTERM, then SIGKILL of
that group), so a failing test leaves no stage behind.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED = REPO_ROOT.parent / "shared"
READY_LINE = "framepipe: pipeline ready"
READY_TIMEOUT = 60.0

sys.path.insert(0, str(REPO_ROOT / "clients" / "python"))


def free_ports(n: int) -> list[int]:
    """Ports the OS says are free right now (bound to 0, then released)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Pipeline:
    """One `framepipe start` process (it starts and stops the four stages itself)."""

    def __init__(self, profile: str, sets: list[str], extra: list[str]) -> None:
        ports = free_ports(5)
        self.endpoint = f"tcp://127.0.0.1:{ports[0]}"
        hops = zip(("clients", "detect", "classify", "sink", "replies"), ports)
        flags = [f"transport.{hop}=tcp://127.0.0.1:{port}" for hop, port in hops] + sets
        argv = ["node", "bin/framepipe.js", "start", "--profile", profile, *extra]
        for flag in flags:
            argv += ["--set", flag]
        # A file, not a pipe: nobody has to keep reading the stages' logs for them to keep running.
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"framepipe-{profile}-", suffix=".log", delete=False)
        self.process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        until = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < until:
            if READY_LINE in Path(self.log.name).read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"framepipe exited with {self.process.returncode} before it was ready:\n{self.tail()}")
            time.sleep(0.1)
        raise RuntimeError(f"framepipe not ready after {READY_TIMEOUT:g} s:\n{self.tail()}")

    def tail(self, lines: int = 15) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        os.unlink(self.log.name)


def start_pipeline(profile: str = "noop", sets: list[str] | None = None, extra: list[str] | None = None) -> Iterator[Pipeline]:
    """Generator body of a pipeline fixture: yields a ready pipeline, stops it whatever happens."""
    pipeline = Pipeline(profile, sets or [], extra or [])
    try:
        pipeline.wait_ready()
        yield pipeline
    finally:
        pipeline.stop()


@pytest.fixture(scope="session")
def pipeline() -> Iterator[Pipeline]:
    """noop profile that decodes images: replies carry width/height, bad images get BAD_IMAGE."""
    yield from start_pipeline("noop", ["detect.model.decode=true", "limits.max_pixels=1000000"])


@pytest.fixture(scope="session")
def slow_pipeline() -> Iterator[Pipeline]:
    """noop profile whose detect stage takes 300 ms a job, four at a time: for deadlines and ordering."""
    yield from start_pipeline("noop", ["detect.model.decode=true", "detect.model.delay_ms=300", "detect.concurrency=4"])


@pytest.fixture(scope="session")
def no_shm_pipeline() -> Iterator[Pipeline]:
    """noop pipeline whose ingest refuses images named in `shm` (transport.client_shared_memory=false)."""
    yield from start_pipeline("noop", ["transport.client_shared_memory=false"])


@pytest.fixture(scope="session")
def dead_endpoint() -> str:
    """An address nobody listens on."""
    return f"tcp://127.0.0.1:{free_ports(1)[0]}"


def png(width: int, height: int, value: int = 128) -> bytes:
    """A flat grey PNG of the given size."""
    import cv2
    import numpy as np

    ok, data = cv2.imencode(".png", np.full((height, width, 3), value, dtype=np.uint8))
    assert ok
    return data.tobytes()


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """frame1.png … frame12.png, each 20+i pixels wide, so a reply's width tells which file it was."""
    folder = tmp_path_factory.mktemp("frames")
    for i in range(1, 13):
        (folder / f"frame{i}.png").write_bytes(png(20 + i, 16))
    (folder / "notes.txt").write_text("not an image")
    return folder
