"""Client (REQ, Lazy Pirate) against a live noop pipeline that decodes images."""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from conftest import Pipeline, png
from framepipe import BadImage, BadRequest, Client, ClientTimeout, TooLarge, check
from framepipe.errors import ERRORS


def test_error_classes_mirror_the_protocol_codes() -> None:
    codes = Path(__file__).resolve().parents[3].joinpath("src/protocol/errors.ts").read_text()
    for code in ERRORS:
        assert f"{code}: '{code}'" in codes
    assert codes.count(": '") == len(ERRORS)


def test_bytes_path_and_array(pipeline: Pipeline, tmp_path: Path) -> None:
    file = tmp_path / "grey.png"
    file.write_bytes(png(40, 30))
    with Client(pipeline.endpoint, timeout=10) as client:
        from_bytes = client.infer(png(64, 48), id="b", stream="cam", frame=3)
        from_path = client.infer(file)
        from_str = client.infer(str(file))
        from_array = client.infer(np.zeros((24, 32, 3), dtype=np.uint8))
    assert (from_bytes["id"], from_bytes["ok"], from_bytes["width"], from_bytes["height"]) == ("b", True, 64, 48)
    assert (from_bytes["stream"], from_bytes["frame"]) == ("cam", 3)
    assert (from_path["width"], from_path["height"]) == (40, 30) == (from_str["width"], from_str["height"])
    assert (from_array["width"], from_array["height"]) == (32, 24)
    assert from_path["detections"] == [] and "total" in from_path["timings_ms"]


def test_error_replies_raise_their_class(pipeline: Pipeline) -> None:
    with Client(pipeline.endpoint, timeout=10) as client:
        with pytest.raises(BadImage) as bad_image:
            client.infer(np.random.default_rng(1).bytes(2000), id="junk")
        with pytest.raises(BadRequest, match="min_score"):
            client.infer(png(8, 8), min_score=2)
        with pytest.raises(TooLarge):  # the fixture caps images at 1 Mpixel
            client.infer(png(1100, 1000))
    assert bad_image.value.code == "BAD_IMAGE" and bad_image.value.request_id == "junk"


def test_error_replies_as_dicts(pipeline: Pipeline) -> None:
    with Client(pipeline.endpoint, timeout=10, raise_on_error=False) as client:
        reply = client.infer(b"definitely not an image")
    assert reply["ok"] is False and reply["error"]["code"] == "BAD_IMAGE"
    with pytest.raises(BadImage):
        check(reply)


def test_dead_endpoint_times_out_after_retries(dead_endpoint: str) -> None:
    started = time.monotonic()
    with Client(dead_endpoint, timeout=0.3, retries=2) as client:
        with pytest.raises(ClientTimeout, match=dead_endpoint) as err:
            client.infer(png(8, 8))
    elapsed = time.monotonic() - started
    assert err.value.attempts == 3
    assert 3 * 0.3 <= elapsed < 3 * (0.3 + 0.25) + 1.0


def test_retry_on_a_fresh_socket_gets_the_reply() -> None:
    """Lazy Pirate: a server that swallows the first request still answers the retry, sent on a new socket."""
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    seen: list[bytes] = []

    def serve() -> None:
        for attempt in range(2):
            if not router.poll(30_000):
                return
            identity, empty, header, _image = router.recv_multipart()
            seen.append(identity)
            if attempt == 1:
                reply = {"id": msgpack.unpackb(header)["id"], "ok": True, "width": 1, "height": 1, "detections": [], "timings_ms": {"total": 0}}
                router.send_multipart([identity, empty, msgpack.packb(reply)])

    server = threading.Thread(target=serve)
    server.start()
    try:
        # The retry gets timeout + REPLY_GRACE to be answered: 2 s, not 0.3, so a loaded machine
        # answers it in time; the first attempt still goes unanswered and is given up on.
        with Client(f"tcp://127.0.0.1:{port}", timeout=2, retries=1) as client:
            reply = client.infer(b"any bytes", id=7)
    finally:
        server.join()
        router.close()
    assert reply["id"] == 7 and reply["ok"]
    assert len(seen) == 2 and seen[0] != seen[1]


def test_retry_with_shared_memory_writes_a_file_per_attempt_and_removes_them() -> None:
    """Lazy Pirate with shared_memory: each attempt names a new file (ingest may have taken the
    last one); files nobody took are removed once the request is done."""
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    names: list[str] = []
    contents: list[bytes] = []

    def serve() -> None:
        for attempt in range(2):
            if not router.poll(30_000):
                return
            identity, empty, header = router.recv_multipart()
            fields = msgpack.unpackb(header)
            names.append(fields["shm"])
            with open(f"/dev/shm/{fields['shm']}", "rb") as f:
                contents.append(f.read())
            if attempt == 1:
                reply = {"id": fields["id"], "ok": True, "width": 1, "height": 1, "detections": [], "timings_ms": {"total": 0}}
                router.send_multipart([identity, empty, msgpack.packb(reply)])

    server = threading.Thread(target=serve)
    server.start()
    try:
        # As above: 2 s for the retry's reply, so load cannot make it miss its wait.
        with Client(f"tcp://127.0.0.1:{port}", timeout=2, retries=1, shared_memory=True) as client:
            reply = client.infer(b"any bytes", id=7)
            assert not any(os.path.exists(f"/dev/shm/{n}") for n in names), "both files removed once answered"
    finally:
        server.join()
        router.close()
    assert reply["ok"] and len(names) == 2 and names[0] != names[1]
    assert contents == [b"any bytes", b"any bytes"]
    assert os.path.dirname(names[0]) == os.path.dirname(names[1]), "one directory per client"
    assert not os.path.exists(f"/dev/shm/{os.path.dirname(names[0])}"), "removed on close"


def _client_dirs() -> set[str]:
    import os

    return {f for f in os.listdir("/dev/shm") if f.startswith(f"framepipe-client-{os.getpid()}-")}


def test_shared_memory_client_files(pipeline: Pipeline) -> None:
    """shared_memory=True: the image goes as a /dev/shm file ingest takes over; nothing is left after."""
    from framepipe import PipelinedClient

    before = _client_dirs()
    with Client(pipeline.endpoint, timeout=10, shared_memory=True) as client:
        jpeg = client.infer(png(64, 48), id="shm")
        raw = client.infer(np.zeros((24, 32, 3), dtype=np.uint8), raw=True)
        with pytest.raises(BadImage):  # a failed request's file goes too
            client.infer(b"definitely not an image")
        (mine,) = _client_dirs() - before
        assert os.listdir(f"/dev/shm/{mine}") == ["owner"], "every file taken over or removed; only its owner file is left"
    assert (jpeg["id"], jpeg["width"], jpeg["height"]) == ("shm", 64, 48)
    assert (raw["width"], raw["height"]) == (32, 24)
    with PipelinedClient(pipeline.endpoint, window=4, timeout=10, shared_memory=True) as pipelined:
        replies = [reply for _, reply in pipelined.map([png(20 + i, 16) for i in range(10)], ordered=True)]
    assert [r["width"] for r in replies] == [20 + i for i in range(10)]
    assert _client_dirs() == before, "close() removed the clients' directories"


def test_shared_memory_really_sends_names(no_shm_pipeline: Pipeline) -> None:
    """Against an ingest that refuses `shm`, both clients get BAD_REQUEST (so they did send names) and remove their files."""
    from framepipe import PipelinedClient

    before = _client_dirs()
    with Client(no_shm_pipeline.endpoint, timeout=10, shared_memory=True) as client:
        with pytest.raises(BadRequest, match="takes no images from shared memory"):
            client.infer(png(8, 8))
        (mine,) = _client_dirs() - before
        assert os.listdir(f"/dev/shm/{mine}") == ["owner"], "the refused file was removed"
    with PipelinedClient(no_shm_pipeline.endpoint, timeout=10, shared_memory=True) as pipelined:
        pipelined.submit(png(8, 8))
        reply = pipelined.next_reply()
        (mine,) = _client_dirs() - before
        assert os.listdir(f"/dev/shm/{mine}") == ["owner"]
    assert reply["error"]["code"] == "BAD_REQUEST"
    assert _client_dirs() == before


def test_shared_memory_killed_client_swept() -> None:
    """A client killed before close() leaves its directory, image and all; an ingest on this host removes it."""
    import signal
    import subprocess
    import sys

    from conftest import REPO_ROOT, start_pipeline

    code = (
        "import sys, time; from framepipe.protocol import SharedFiles; "
        "frames, name = SharedFiles().request(b'not sent', {}); print(name, flush=True); time.sleep(60)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "clients" / "python")}
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        name = child.stdout.readline().strip()
        folder = f"/dev/shm/{os.path.dirname(name)}"
        # Looked at while the client lives (no ingest sweeps a live client's directory).
        assert os.path.basename(folder).startswith(f"framepipe-client-{child.pid}-")
        assert sorted(os.listdir(folder)) == sorted(["owner", os.path.basename(name)])
        with open(f"{folder}/owner") as f:
            assert f.read() == f"{socket.gethostname()}\n{os.readlink('/proc/self/ns/pid')}", "host name and pid namespace"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert os.path.exists(folder), "left behind by the killed client"
    for _ in start_pipeline("noop"):  # ingest sweeps when it starts (and every 30 s after)
        assert not os.path.exists(folder)


def test_shared_files_after_fork() -> None:
    """A forked child writes into a directory of its own (its pid in the name) and never removes its parent's."""
    from framepipe.protocol import SharedFiles

    files = SharedFiles()
    _, parent_name = files.request(b"parent", {})
    parent_dir = os.path.dirname(parent_name)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its file's directory, close, and leave at once
        try:
            _, name = files.request(b"child", {})
            files.close()
            os.write(write, os.path.dirname(name).encode())
        finally:
            os._exit(0)
    os.close(write)
    child_dir = os.read(read, 200).decode()
    os.waitpid(pid, 0)
    try:
        assert child_dir.startswith(f"framepipe-client-{pid}-") and child_dir != parent_dir
        assert not os.path.exists(f"/dev/shm/{child_dir}"), "the child's close() removed its own"
        assert os.path.exists(f"/dev/shm/{parent_name}"), "and left the parent's"
    finally:
        files.close()
    assert not os.path.exists(f"/dev/shm/{parent_dir}")


def test_shared_memory_header_by_hand(pipeline: Pipeline) -> None:
    """The protocol as docs/protocol.md shows it: a private directory, the file's name in `shm`, no frame 2."""
    import secrets
    import tempfile

    folder = tempfile.mkdtemp(prefix="framepipe-client-", dir="/dev/shm")  # 0700
    name = f"{os.path.basename(folder)}/{secrets.token_hex(12)}"
    with open(f"/dev/shm/{name}", "xb") as f:
        f.write(png(50, 40))
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(pipeline.endpoint)
    try:
        sock.send(msgpack.packb({"id": 1, "shm": name}))
        assert sock.poll(10_000)
        reply = msgpack.unpackb(sock.recv())
        sock.send(msgpack.packb({"id": 2, "shm": f"{os.path.basename(folder)}/nobody-wrote-this"}))
        assert sock.poll(10_000)
        missing = msgpack.unpackb(sock.recv())
    finally:
        sock.close()
        os.rmdir(folder)  # empty: ingest took the file
    assert (reply["ok"], reply["width"], reply["height"]) == (True, 50, 40)
    assert missing["error"]["code"] == "BAD_REQUEST" and "does not exist" in missing["error"]["message"]
