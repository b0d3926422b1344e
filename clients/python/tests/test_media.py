"""Folders, videos and drawing, against a live noop pipeline that decodes images."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from conftest import Pipeline
from framepipe import PipelinedClient, Reply, draw, infer_folder, infer_video, list_images, natural_key


def test_natural_order() -> None:
    names = ["frame10.png", "Frame2.png", "frame1.png", "frame2b.png"]
    assert sorted(names, key=natural_key) == ["frame1.png", "Frame2.png", "frame2b.png", "frame10.png"]


def test_folder_in_natural_order(pipeline: Pipeline, image_folder: Path) -> None:
    assert [p.name for p in list_images(image_folder)] == [f"frame{i}.png" for i in range(1, 13)]
    with PipelinedClient(pipeline.endpoint, window=4, timeout=10) as client:
        results = list(infer_folder(client, image_folder))
    assert [path.name for path, _ in results] == [f"frame{i}.png" for i in range(1, 13)]
    assert [reply["width"] for _, reply in results] == [20 + i for i in range(1, 13)]


def write_video(path: Path, frames: int) -> None:
    """A short MJPG video whose frames differ (a bar that moves), as a camera would give."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for i in range(frames):
        image = np.zeros((48, 64, 3), dtype=np.uint8)
        image[:, i * 6 : i * 6 + 6] = 255
        writer.write(image)
    writer.release()


def test_video_one_reply_per_frame(pipeline: Pipeline, tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    write_video(video, 10)
    with PipelinedClient(pipeline.endpoint, window=4, timeout=10) as client:
        results = list(infer_video(client, video))
    assert len(results) == 10
    assert [reply["frame"] for _, reply in results] == list(range(10))
    assert all(reply["stream"] == "clip.avi" and reply["ok"] for _, reply in results)
    assert all(frame.shape == (48, 64, 3) and (reply["width"], reply["height"]) == (64, 48) for frame, reply in results)


def test_draw_boxes_labels_and_errors() -> None:
    frame = np.zeros((120, 160, 3), dtype=np.uint8)
    reply: Reply = {
        "ok": True,
        "detections": [
            {"box": [10, 30, 60, 80], "score": 0.9, "label": "dog", "classes": [{"label": "malamute", "score": 0.7}]},
            {"box": [70, 40, 150, 60], "score": 0.8, "label": "text", "text": "EXIT", "polygon": [[70, 40], [150, 40], [150, 60], [70, 60]]},
        ],
    }
    assert draw(frame, reply) is frame
    assert frame[30:81, 10].any() and frame[40:61, 70].any()
    failed = np.zeros((40, 160, 3), dtype=np.uint8)
    draw(failed, {"ok": False, "error": {"code": "BAD_IMAGE", "message": "corrupt"}})
    assert failed[..., 2].any()
