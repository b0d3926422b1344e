"""The runnable examples in examples/python keep working against a live pipeline."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Pipeline, png

EXAMPLES = REPO_ROOT / "examples" / "python"


def run_example(name: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "clients" / "python")}
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_folder_pipelined(pipeline: Pipeline, image_folder: Path) -> None:
    lines = run_example("folder_pipelined.py", str(image_folder), pipeline.endpoint).splitlines()
    assert lines[0] == "frame1.png: 21x16 []" and lines[-1] == "frame12.png: 32x16 []" and len(lines) == 12


@pytest.mark.server_extension
def test_imagezmq_sender(pipeline: Pipeline, tmp_path: Path) -> None:
    image = tmp_path / "frame.jpg"
    image.write_bytes(png(30, 20))  # any format the server decodes; imagezmq would send a JPEG
    assert run_example("imagezmq_sender.py", str(image), pipeline.endpoint).strip() == "example-cam: 30x20, []"
