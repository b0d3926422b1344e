"""`python3 -m framepipe` as a user runs it: a real subprocess against a live pipeline."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT, Pipeline

CLIENT_DIR = REPO_ROOT / "clients" / "python"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(CLIENT_DIR)}
    return subprocess.run([sys.executable, "-m", "framepipe", *args], capture_output=True, text=True, env=env, timeout=60)


def test_folder_to_jsonl(pipeline: Pipeline, image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    result = run_cli(str(image_folder), "--endpoint", pipeline.endpoint, "--out", str(out), "--inflight", "4")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(r["file"]).name for r in lines] == [f"frame{i}.png" for i in range(1, 13)]
    assert all(r["ok"] for r in lines)
    assert "12 image(s), 0 error(s)" in result.stderr and "images/s" in result.stderr


def test_shared_memory_flag(pipeline: Pipeline, image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "shm.jsonl"
    env = {**os.environ, "PYTHONPATH": str(CLIENT_DIR)}
    argv = [sys.executable, "-m", "framepipe", str(image_folder), "--endpoint", pipeline.endpoint, "--out", str(out), "--shared-memory", "--raw"]
    child = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["width"] for r in lines] == [20 + i for i in range(1, 13)]
    assert not [f for f in os.listdir("/dev/shm") if f.startswith(f"framepipe-client-{child.pid}-")], "its directory was removed"


def test_shared_memory_flag_sends_names(no_shm_pipeline: Pipeline, image_folder: Path) -> None:
    """--shared-memory really names files: an ingest that refuses them answers BAD_REQUEST for each."""
    result = run_cli(str(image_folder / "frame1.png"), "--endpoint", no_shm_pipeline.endpoint, "--shared-memory")
    assert result.returncode == 1
    assert "1 image(s), 1 error(s) (BAD_REQUEST 1)" in result.stderr


def test_errors_counted_by_code(pipeline: Pipeline, image_folder: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    result = run_cli(str(bad), str(image_folder / "frame1.png"), "--endpoint", pipeline.endpoint, "--raw")
    assert result.returncode == 1
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["ok"] for r in replies] == [False, True]
    assert "2 image(s), 1 error(s) (BAD_IMAGE 1)" in result.stderr


def test_dead_endpoint_and_missing_input(dead_endpoint: str, image_folder: Path) -> None:
    timed_out = run_cli(str(image_folder), "--endpoint", dead_endpoint, "--timeout", "0.3")
    assert timed_out.returncode == 2 and f"no reply from {dead_endpoint}" in timed_out.stderr
    missing = run_cli("no/such/place", "--endpoint", dead_endpoint)
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
