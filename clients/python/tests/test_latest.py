"""Latest-frame mode from Python: SKIPPED replies are returned like any reply, never raised."""
from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from conftest import Pipeline, free_ports, png, start_pipeline
from framepipe import SKIPPED, Client, PipelinedClient, Reply, check, infer_video, is_skipped
from framepipe.errors import ERRORS
from test_cli import run_cli
from test_media import write_video

DELAY_MS = 1000
"""How long detect holds a frame: the window in which newer frames of its stream must reach ingest
to box (and so skip) one another. Generous, so a loaded machine's scheduling cannot close it."""
SETTLE_S = 30.0
"""Deadline for ingest to reach an expected state; only a broken pipeline takes that long."""


@pytest.fixture(scope="module")
def latest_pipeline() -> Iterator[Pipeline]:
    """detect takes DELAY_MS a frame; one frame of a stream in the pipeline at a time; ingest serves /metrics."""
    sets = ["detect.model.decode=true", f"detect.model.delay_ms={DELAY_MS}", "limits.latest_inflight=1", f"metrics.port={free_ports(1)[0]}"]
    yield from start_pipeline("noop", sets)


def ingest_metrics_url(pipeline: Pipeline) -> str:
    """Where ingest serves /metrics, from its ready line (it moves up a slot if its port was taken)."""
    for line in Path(pipeline.log.name).read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("stage") == "ingest" and "metrics" in entry:
            return entry["metrics"]
    raise AssertionError(f"no metrics URL in ingest's ready line:\n{pipeline.tail()}")


def requests_in_flight(url: str) -> int:
    """Ingest's framepipe_requests_in_flight gauge: requests accepted and not yet answered (boxed ones included)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        text = response.read().decode()
    match = re.search(r'^framepipe_requests_in_flight\{stage="ingest"\} (\d+)$', text, re.M)
    assert match, f"no framepipe_requests_in_flight in {url}"
    return int(match.group(1))


def wait_in_flight(url: str, expected: int) -> None:
    """Polls until ingest holds exactly `expected` requests (SETTLE_S at most)."""
    until = time.monotonic() + SETTLE_S
    while (seen := requests_in_flight(url)) != expected:
        assert time.monotonic() < until, f"ingest holds {seen} requests, not {expected}, after {SETTLE_S:g} s"
        time.sleep(0.01)


def outcome(reply: Reply) -> str:
    return "SKIPPED" if is_skipped(reply) else "ok" if reply["ok"] else reply["error"]["code"]


def test_burst_returns_skipped_replies(latest_pipeline: Pipeline) -> None:
    image = png(32, 24)
    with PipelinedClient(latest_pipeline.endpoint, window=8, timeout=10) as client:
        for i in range(6):
            client.submit(image, id=f"f{i}", stream="cam", frame=i, latest=True)
        replies = {r["id"]: r for r in client.as_completed()}
    assert [outcome(replies[f"f{i}"]) for i in range(6)] == ["ok", "SKIPPED", "SKIPPED", "SKIPPED", "SKIPPED", "ok"]
    for i in range(1, 5):
        skipped = replies[f"f{i}"]
        assert skipped["ok"] is False and skipped["skipped"] is True and skipped["error"]["code"] == SKIPPED
        assert skipped["superseded_by"] == {"id": f"f{i + 1}", "frame": i + 1}
        assert (skipped["stream"], skipped["frame"]) == ("cam", i)
        assert check(skipped) is skipped  # not an error, so check() hands it back
    assert SKIPPED not in ERRORS  # no exception class: nothing raises it


def test_req_client_returns_skipped_instead_of_raising(latest_pipeline: Pipeline) -> None:
    image = png(32, 24)
    metrics = ingest_metrics_url(latest_pipeline)
    result: dict[str, Reply] = {}
    wait_in_flight(metrics, 0)  # nothing left over from an earlier test
    with PipelinedClient(latest_pipeline.endpoint, window=4, timeout=10) as other:
        other.submit(image, id="first", stream="shared", frame=0, latest=True)
        sent_first = time.monotonic()
        wait_in_flight(metrics, 1)  # `first` is in the pipeline: the stream's one slot is taken

        def boxed() -> None:
            # raise_on_error is on: an error reply would raise here, and the thread would leave no result.
            with Client(latest_pipeline.endpoint, timeout=10) as client:
                result["reply"] = client.infer(image, id="boxed", stream="shared", frame=1, latest=True)

        thread = threading.Thread(target=boxed)
        thread.start()
        # Two held while the slot is still taken: `boxed` waits in the stream's box behind `first`.
        wait_in_flight(metrics, 2)
        other.submit(image, id="newer", stream="shared", frame=2, latest=True)
        newer_after = time.monotonic() - sent_first
        thread.join(10)
        replies = {r["id"]: r for r in other.as_completed()}
    # Only if `newer` came after `first` left detect could `boxed` have gone in instead (the test's slack, not the product).
    context = f"`newer` sent {newer_after * 1000:.0f} ms after `first`, which detect holds {DELAY_MS} ms"
    assert outcome(result["reply"]) == "SKIPPED", context
    assert result["reply"]["superseded_by"] == {"id": "newer", "frame": 2}
    assert (outcome(replies["first"]), outcome(replies["newer"])) == ("ok", "ok")


def test_bad_request_without_stream(latest_pipeline: Pipeline) -> None:
    with Client(latest_pipeline.endpoint, timeout=10, raise_on_error=False) as client:
        reply = client.infer(png(8, 8), latest=True)
    assert reply["error"]["code"] == "BAD_REQUEST" and "stream" in reply["error"]["message"]


def test_video_in_latest_mode_yields_every_frame_once(latest_pipeline: Pipeline, tmp_path: Path) -> None:
    video = tmp_path / "live.avi"
    write_video(video, 10)
    with PipelinedClient(latest_pipeline.endpoint, window=8, timeout=10) as client:
        # realtime=False: read the file as fast as possible, far faster than 5 frames/s.
        results = list(infer_video(client, video, latest=True, realtime=False))
    frames = sorted(reply["frame"] for _, reply in results)
    assert frames == list(range(10))
    outcomes = {reply["frame"]: outcome(reply) for _, reply in results}
    assert set(outcomes.values()) == {"ok", "SKIPPED"}
    assert outcomes[0] == "ok" and outcomes[9] == "ok"


def test_cli_latest_counts_skipped_apart_from_errors(latest_pipeline: Pipeline, tmp_path: Path) -> None:
    video = tmp_path / "cam.avi"
    write_video(video, 10)  # 10 frames/s read in real time: far more than DELAY_MS a frame can serve
    result = run_cli(str(video), "--endpoint", latest_pipeline.endpoint, "--latest")
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["frame"] for r in replies) == list(range(10))
    skipped = sum(1 for r in replies if r.get("skipped"))
    assert skipped > 0 and all(r["ok"] or r.get("skipped") for r in replies)
    assert f"10 image(s), 0 error(s), {skipped} skipped" in result.stderr
