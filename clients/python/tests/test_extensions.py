"""Protocol extensions served by newer servers: raw frames and imagezmq senders.

Marked ``server_extension``: when the server predates them, these fail with a message starting
"SERVER EXTENSION MISSING" (deselect with ``-m "not server_extension"``).
"""
from __future__ import annotations

import json

import cv2
import msgpack
import numpy as np
import pytest
import zmq

from conftest import Pipeline
from framepipe import BadRequest, Client, PipelinedClient, Reply

pytestmark = pytest.mark.server_extension


def picture() -> np.ndarray:
    """40×30 BGR with a different value per channel, so a swapped channel order would show."""
    image = np.zeros((30, 40, 3), dtype=np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 120, 240
    return image


def require_ok(reply: Reply, what: str) -> Reply:
    if not reply.get("ok"):
        error = reply.get("error", {})
        pytest.fail(f"SERVER EXTENSION MISSING? {what}: server replied {error.get('code')}: {error.get('message')}")
    return reply


@pytest.mark.parametrize(
    ("array", "pixels"),
    [(picture(), "bgr"), (picture()[..., ::-1], "rgb"), (picture()[..., 1], "bgr"), (picture()[..., :1], "bgr")],
    ids=["bgr", "rgb-view", "gray-2d", "gray-hw1"],
)
def test_raw_frames(pipeline: Pipeline, array: np.ndarray, pixels: str) -> None:
    with Client(pipeline.endpoint, timeout=10, raise_on_error=False) as client:
        reply = require_ok(client.infer(array, raw=True, pixels=pixels), f"raw {pixels} frame of shape {array.shape}")  # type: ignore[arg-type]
    assert (reply["width"], reply["height"]) == (40, 30)


def test_raw_frames_pipelined(pipeline: Pipeline) -> None:
    with PipelinedClient(pipeline.endpoint, window=4, timeout=10) as client:
        replies = [reply for _, reply in client.map([picture()] * 6, raw=True)]
    assert all(require_ok(r, "raw frame over DEALER")["width"] == 40 for r in replies)


def test_raw_frame_of_the_wrong_size_is_a_bad_request(pipeline: Pipeline) -> None:
    header = {"id": "short", "shape": [30, 40, 3], "dtype": "uint8", "pixels": "bgr", "timeout_ms": 5000}
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(pipeline.endpoint)
    try:
        socket.send_multipart([msgpack.packb(header), picture().tobytes()[:-1]])
        assert socket.poll(10_000), "no reply"
        reply = msgpack.unpackb(socket.recv())
    finally:
        socket.close()
    assert reply["ok"] is False
    if reply["error"]["code"] != BadRequest.code:
        pytest.fail(f"SERVER EXTENSION MISSING? a short raw frame got {reply['error']['code']}, not BAD_REQUEST")
    assert "shape" in reply["error"]["message"]


def imagezmq_send(endpoint: str, metadata: dict[str, object], payload: bytes) -> dict[str, object]:
    """What imagezmq's ImageSender (REQ mode) does: send_json(md, SNDMORE), send(bytes), recv() one reply."""
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    try:
        socket.send_json(metadata, zmq.SNDMORE)
        socket.send(payload, copy=False)
        assert socket.poll(10_000), "no reply to an imagezmq sender"
        frames = socket.recv_multipart()
    finally:
        socket.close()
    assert len(frames) == 1, f"imagezmq reads one reply frame, got {len(frames)}"
    try:
        return json.loads(frames[0].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        pytest.fail(f"SERVER EXTENSION MISSING? the reply to an imagezmq sender is not JSON: {msgpack.unpackb(frames[0])!r}")


def test_imagezmq_send_jpg(pipeline: Pipeline) -> None:
    ok, jpeg = cv2.imencode(".jpg", picture())
    assert ok
    reply = imagezmq_send(pipeline.endpoint, {"msg": "rpi-cam"}, jpeg.tobytes())
    require_ok(reply, "imagezmq send_jpg")  # type: ignore[arg-type]
    assert (reply["width"], reply["height"], reply["stream"]) == (40, 30, "rpi-cam")


def test_imagezmq_send_image(pipeline: Pipeline) -> None:
    image = picture()
    reply = imagezmq_send(pipeline.endpoint, {"msg": "rpi-cam", "dtype": str(image.dtype), "shape": image.shape}, image.tobytes())
    require_ok(reply, "imagezmq send_image")  # type: ignore[arg-type]
    assert (reply["width"], reply["height"]) == (40, 30)


def test_imagezmq_bad_jpeg_gets_a_json_error(pipeline: Pipeline) -> None:
    reply = imagezmq_send(pipeline.endpoint, {"msg": "rpi-cam"}, b"not a jpeg")
    assert reply["ok"] is False and reply["error"]["code"] == "BAD_IMAGE"  # type: ignore[index]
