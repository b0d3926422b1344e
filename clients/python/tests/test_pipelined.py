"""PipelinedClient (DEALER, window of requests in flight): completion order, ordering, deadlines."""
from __future__ import annotations

import threading
import time
from typing import Iterator

import msgpack
import pytest
import zmq

import framepipe.pipelined
from conftest import Pipeline, png
from framepipe import ClientTimeout, PipelinedClient, Request


def short_timeout(i: int) -> bool:
    """Every third request gets a deadline the 300 ms stage cannot meet, so its TIMEOUT reply overtakes the rest."""
    return i % 3 == 2


def test_replies_complete_out_of_order_each_id_once(slow_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    # The client waits REPLY_GRACE (0.25 s) past a deadline; on a loaded machine ingest's TIMEOUT
    # reply to a 100 ms deadline can take longer than that. A long grace leaves ingest to answer:
    # a missing TIMEOUT reply still fails the test (ClientTimeout after 2.1 s), a late one does not.
    monkeypatch.setattr(framepipe.pipelined, "REPLY_GRACE", 2.0)
    image = png(16, 16)
    with PipelinedClient(slow_pipeline.endpoint, window=8, timeout=10) as client:
        sent = [client.submit(image, id=f"r{i}", timeout=0.1 if short_timeout(i) else 10) for i in range(16)]
        assert client.inflight <= 8
        replies = list(client.as_completed())
    ids = [r["id"] for r in replies]
    assert sorted(ids) == sorted(sent) and len(set(ids)) == len(sent)
    assert ids != sent, "a 100 ms deadline should overtake 300 ms jobs"
    for reply in replies:
        i = int(reply["id"][1:])
        assert (reply["ok"], reply.get("error", {}).get("code")) == ((False, "TIMEOUT") if short_timeout(i) else (True, None))


def test_window_bounds_requests_in_flight(slow_pipeline: Pipeline) -> None:
    with PipelinedClient(slow_pipeline.endpoint, window=2, timeout=10) as client:
        for _ in range(5):
            client.submit(png(8, 8))
            assert client.inflight <= 2
        assert sorted(r["id"] for r in client.as_completed()) == [1, 2, 3, 4, 5]


def test_ordered_map_yields_frames_in_order(slow_pipeline: Pipeline) -> None:
    image = png(16, 16)
    frames = (Request(image, stream="cam", frame=i) for i in range(12))
    with PipelinedClient(slow_pipeline.endpoint, window=6, timeout=10) as client:
        results = list(client.map(frames, ordered=True))
    assert [request.frame for request, _ in results] == list(range(12))
    assert [reply["frame"] for _, reply in results] == list(range(12))
    assert all(reply["stream"] == "cam" and reply["ok"] for _, reply in results)


@pytest.fixture
def reversing_server() -> Iterator[str]:
    """A stand-in server that collects requests for 100 ms, then answers them last first."""
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            batch = []
            while router.poll(100):
                batch.append(router.recv_multipart())
            for identity, empty, header, _image in reversed(batch):
                fields = msgpack.unpackb(header)
                reply = {"id": fields["id"], "ok": True, "frame": fields.get("frame"), "detections": [], "timings_ms": {}}
                router.send_multipart([identity, empty, msgpack.packb(reply)])

    server = threading.Thread(target=serve)
    server.start()
    yield f"tcp://127.0.0.1:{port}"
    stop.set()
    server.join()
    router.close()


@pytest.mark.parametrize("ordered", [True, False])
def test_ordered_mode_undoes_reversed_completion(reversing_server: str, ordered: bool) -> None:
    frames = [Request(b"jpeg", stream="cam", frame=i) for i in range(10)]
    with PipelinedClient(reversing_server, window=5, timeout=5) as client:
        got = [reply["frame"] for _, reply in client.map(frames, ordered=ordered)]
    assert got == (list(range(10)) if ordered else [4, 3, 2, 1, 0, 9, 8, 7, 6, 5])


def test_unordered_map_yields_every_item(pipeline: Pipeline) -> None:
    images = [png(10 + i, 10) for i in range(10)]
    with PipelinedClient(pipeline.endpoint, window=4, timeout=10) as client:
        results = list(client.map(images))
    assert sorted(reply["width"] for _, reply in results) == list(range(10, 20))
    assert all(item is images[reply["width"] - 10] for item, reply in results)


def test_dead_endpoint_raises_client_timeout(dead_endpoint: str) -> None:
    started = time.monotonic()
    with PipelinedClient(dead_endpoint, window=4, timeout=0.3) as client:
        with pytest.raises(ClientTimeout, match=dead_endpoint):
            list(client.map([png(8, 8)] * 10))
        assert client.inflight == 0
    assert time.monotonic() - started < 2.0


def test_late_replies_are_dropped() -> None:
    """A reply arriving after its request timed out on the client is discarded, not handed to the next caller."""
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")

    def answer(frames: list[bytes]) -> None:
        identity, empty, header, _image = frames
        reply = {"id": msgpack.unpackb(header)["id"], "ok": True, "width": 1, "height": 1, "detections": [], "timings_ms": {}}
        router.send_multipart([identity, empty, msgpack.packb(reply)])

    def serve() -> None:
        late = [router.recv_multipart() for _ in range(2)]
        time.sleep(0.6)
        for frames in late:
            answer(frames)
        if router.poll(5000):
            answer(router.recv_multipart())

    server = threading.Thread(target=serve)
    server.start()
    try:
        with PipelinedClient(f"tcp://127.0.0.1:{port}", window=4, timeout=0.1) as client:
            client.submit(b"x", id="late-1")
            client.submit(b"x", id="late-2")
            for _ in range(2):
                with pytest.raises(ClientTimeout):
                    client.next_reply()
            time.sleep(0.5)
            client.submit(b"x", id="on-time", timeout=2)
            reply = client.next_reply()
            assert reply["id"] == "on-time"
            assert client.dropped == 2
    finally:
        server.join()
        router.close()
