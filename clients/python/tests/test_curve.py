"""CURVE from Python: a pipeline with security.curve on serves a client with an allowed key pair
and gives nothing to one without (keys made by `framepipe keygen`, as a user would)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from framepipe import Client, ClientTimeout, CurveKeys, PipelinedClient

from conftest import REPO_ROOT, Pipeline, png, start_pipeline


def keygen(folder: Path, name: str) -> None:
    subprocess.run(["node", str(REPO_ROOT / "bin/framepipe.js"), "keygen", "--out", str(folder), "--name", name], check=True, capture_output=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    for name in ("server", "camera", "stranger"):
        keygen(folder, name)
    return folder


@pytest.fixture(scope="module")
def curve_pipeline(keys: Path) -> Iterator[Pipeline]:
    yield from start_pipeline(
        "noop",
        [
            "detect.model.decode=true",
            "security.curve=true",
            f"security.server_secret_key=@{keys / 'server.secret'}",
            f"security.allowed_clients=@{keys / 'camera.public'}",
        ],
    )


def test_allowed_key_is_served_by_both_clients(curve_pipeline: Pipeline, keys: Path) -> None:
    curve = CurveKeys.load(f"@{keys / 'server.public'}", keys / "camera.secret")
    with Client(curve_pipeline.endpoint, timeout=10, curve=curve) as client:
        assert client.infer(png(33, 21))["width"] == 33
    with PipelinedClient(curve_pipeline.endpoint, timeout=10, curve=curve) as pipelined:
        replies = list(pipelined.map([png(10 + i, 8) for i in range(4)], ordered=True))
    assert [reply["width"] for _item, reply in replies] == [10, 11, 12, 13]


def test_unknown_key_and_plain_client_get_nothing(curve_pipeline: Pipeline, keys: Path) -> None:
    stranger = CurveKeys.load(f"@{keys / 'server.public'}", keys / "stranger.secret")
    with Client(curve_pipeline.endpoint, timeout=1, retries=0, curve=stranger) as client:
        with pytest.raises(ClientTimeout):
            client.infer(png(8, 8))
    with Client(curve_pipeline.endpoint, timeout=1, retries=0) as plain:
        with pytest.raises(ClientTimeout):
            plain.infer(png(8, 8))


def test_key_files_are_checked(keys: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="public_key= and secret_key="):
        CurveKeys.load(f"@{keys / 'server.public'}", keys / "camera.public")
    bad = tmp_path / "bad.public"
    bad.write_text("not a key\n")
    with pytest.raises(ValueError, match="not a CURVE key"):
        CurveKeys.load(f"@{bad}", keys / "camera.secret")
