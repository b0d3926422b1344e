"""The real objects profile (YOLOX-Nano + MobileNetV2) on a real photo, when ../shared has the models."""
from __future__ import annotations

from typing import Iterator

import cv2
import pytest

from conftest import SHARED, Pipeline, start_pipeline
from framepipe import Client, draw

PHOTO = SHARED / "images" / "dog_bicycle_truck.jpg"

pytestmark = pytest.mark.skipif(
    not (SHARED / "models" / "yolox_nano.onnx").exists() or not PHOTO.exists(),
    reason=f"SKIPPED: the objects profile needs models and photos in {SHARED} (not present)",
)


@pytest.fixture(scope="module")
def objects_pipeline() -> Iterator[Pipeline]:
    yield from start_pipeline("objects", extra=["--models", str(SHARED / "models")])


def test_dog_bicycle_car(objects_pipeline: Pipeline) -> None:
    with Client(objects_pipeline.endpoint, timeout=60) as client:
        reply = client.infer(PHOTO)
        from_array = client.infer(cv2.imread(str(PHOTO)), raw=True)
    assert (reply["width"], reply["height"]) == (768, 576)
    labels = {d["label"] for d in reply["detections"]}
    assert {"dog", "bicycle", "car"} <= labels
    dog = next(d for d in reply["detections"] if d["label"] == "dog")
    assert dog["classes"] and dog["score"] > 0.5
    assert {"dog", "bicycle", "car"} <= {d["label"] for d in from_array["detections"]}
    frame = cv2.imread(str(PHOTO))
    before = frame.copy()
    assert (draw(frame, reply) != before).any()
