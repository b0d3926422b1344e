"""Exceptions of the framepipe client.

One class per protocol v1 error code, mirroring ``src/protocol/errors.ts`` (docs/protocol.md is the
contract): callers catch the failure they can handle (``except Overloaded: back off``) instead of
comparing strings. Codes are stable on the wire; messages are for people.

``ClientTimeout`` is different in kind: no reply arrived at all, so it carries no server code.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, TypeVar


class FramepipeError(Exception):
    """Base class of every error reply; ``code`` is the protocol's code, ``reply`` the whole reply."""

    code: str = ""

    def __init__(self, message: str, reply: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(message)
        self.message = message
        self.reply: Mapping[str, Any] = reply if reply is not None else {}

    @property
    def request_id(self) -> Any:
        """The id of the failed request, as echoed by the server (None when it could not read it)."""
        return self.reply.get("id")


class BadRequest(FramepipeError):
    """The request is not protocol v1: header not a msgpack map, wrong field type, no image, raw size mismatch."""

    code = "BAD_REQUEST"


class BadImage(FramepipeError):
    """The bytes are not a decodable image (unknown format, truncated, corrupt)."""

    code = "BAD_IMAGE"


class TooLarge(FramepipeError):
    """The message or the image's declared width × height exceeds a server limit."""

    code = "TOO_LARGE"


class Timeout(FramepipeError):
    """The request's deadline passed in the pipeline before its result was ready; retry with a longer timeout."""

    code = "TIMEOUT"


class Overloaded(FramepipeError):
    """The pipeline holds as many requests as it may (or is shutting down); retry after a back-off."""

    code = "OVERLOADED"


class Internal(FramepipeError):
    """A bug or an unexpected failure inside a stage (the message says which)."""

    code = "INTERNAL"


class UnknownError(FramepipeError):
    """A code this client does not know yet (a newer server); ``code`` holds it as received."""

    def __init__(self, code: str, message: str, reply: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(message, reply)
        self.code = code


class ClientTimeout(TimeoutError):
    """No reply from ``endpoint`` within the client's time limit (after any retries).

    A subclass of the built-in TimeoutError, not of FramepipeError: the server never answered, so
    the pipeline may be down, unreachable, or the request may still complete there.
    """

    def __init__(self, endpoint: str, timeout: float, attempts: int = 1, request_id: Any = None) -> None:
        tries = f" ({attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"no reply from {endpoint} within {timeout:g} s{tries}")
        self.endpoint = endpoint
        self.timeout = timeout
        self.attempts = attempts
        self.request_id = request_id


ERRORS: dict[str, type[FramepipeError]] = {
    cls.code: cls for cls in (BadRequest, BadImage, TooLarge, Timeout, Overloaded, Internal)
}
"""Protocol error code → exception class."""


def error_from_reply(reply: Mapping[str, Any]) -> FramepipeError:
    """The exception a failure reply stands for (``reply["ok"]`` must be false, and not SKIPPED)."""
    error = reply.get("error") or {}
    code = str(error.get("code", ""))
    message = str(error.get("message", ""))
    cls = ERRORS.get(code)
    if cls is None:
        return UnknownError(code, message, reply)
    return cls(message, reply)


R = TypeVar("R", bound=Mapping[str, Any])


def check(reply: R) -> R:
    """Returns a successful reply unchanged; raises the matching FramepipeError for a failure reply.

    For code that prefers exceptions: ``reply = check(client.infer(image))``. A SKIPPED reply
    (latest-frame mode, ``reply["skipped"]``) is returned unchanged too: it is the mode working as
    asked, not a failure.
    """
    if reply.get("ok") or reply.get("skipped") is True:
        return reply
    raise error_from_reply(reply)
