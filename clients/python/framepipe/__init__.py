"""Python client for framepipe (protocol v1 over ZeroMQ; docs/protocol.md is the contract).

- ``Client``: one image at a time over REQ, with timeouts and retries (Lazy Pirate).
- ``PipelinedClient``: up to ``window`` requests in flight over DEALER, replies as they complete
  or in order.
- ``infer_folder``, ``infer_video``, ``draw``: folders, videos/cameras and drawing (need OpenCV).

Needs only pyzmq and msgpack; numpy and OpenCV are imported by the array, video and drawing helpers.
"""
from .client import Client
from .curve import CurveKeys
from .errors import (
    BadImage,
    BadRequest,
    ClientTimeout,
    FramepipeError,
    Internal,
    Overloaded,
    Timeout,
    TooLarge,
    UnknownError,
    check,
    error_from_reply,
)
from .media import draw, infer_folder, infer_video, list_images, natural_key
from .pipelined import PipelinedClient, Request
from .protocol import SKIPPED, ClassScore, Detection, ErrorInfo, ImageInput, Reply, RequestId, SupersededBy, is_skipped

__version__ = "0.1.0"

__all__ = [
    "CurveKeys",
    "BadImage",
    "BadRequest",
    "ClassScore",
    "Client",
    "ClientTimeout",
    "Detection",
    "ErrorInfo",
    "FramepipeError",
    "ImageInput",
    "Internal",
    "Overloaded",
    "PipelinedClient",
    "Reply",
    "Request",
    "RequestId",
    "SKIPPED",
    "SupersededBy",
    "Timeout",
    "TooLarge",
    "UnknownError",
    "check",
    "draw",
    "error_from_reply",
    "infer_folder",
    "infer_video",
    "is_skipped",
    "list_images",
    "natural_key",
]
