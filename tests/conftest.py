"""Shared fixtures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: ../shared/data beside the repository (present on developer machines and in CI).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the real recorded series; skips the test when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


# --------------------------------------------------------------------------- local OpenAI server


@dataclass(frozen=True)
class LocalServer:
    """A running ``transformers serve`` on 127.0.0.1 serving the package's tiny model."""

    base_url: str
    model: str
    port: int
    log: Path


#: Chat template saved with the tiny tokenizer (``transformers serve`` needs one).
TINY_CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }} {% endfor %}"


def _transformers_cli() -> str | None:
    """The ``transformers`` console script of this interpreter, when serving is installed."""
    import importlib.util
    import shutil

    if any(importlib.util.find_spec(m) is None for m in ("transformers", "fastapi", "uvicorn")):
        return None
    here = Path(sys.executable).parent / "transformers"
    return str(here) if here.is_file() else shutil.which("transformers")


@pytest.fixture(scope="session")
def openai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """Start ``transformers serve`` (offline, CPU) on a free port for the whole session.

    Skipped only when ``transformers serve`` is not installed and ``CI`` is not
    ``true``; in CI, a missing or failing server fails the tests that use it.
    """
    in_ci = os.environ.get("CI", "").lower() == "true"
    cli = _transformers_cli()
    if cli is None:
        msg = "transformers serve is not installed (pip install 'transformers[serving]')"
        if in_ci:
            pytest.fail(msg)
        pytest.skip(msg)
    from llenergymeasure.core.tiny_model import build_tiny_causal_lm

    folder = tmp_path_factory.mktemp("tiny-served") / "tiny"
    model, tokenizer = build_tiny_causal_lm(seed=0)
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = folder.parent / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
    cmd = [cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
           "--log-level", "info"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    ready = r.status == 200
            except OSError:
                ready = False
            if ready:
                break
            time.sleep(0.25)
        if not ready:
            tail = log.read_text(errors="replace")[-3000:]
            state = f"exited with {proc.returncode}" if proc.poll() is not None else "timed out"
            pytest.fail(f"transformers serve did not start ({state}): {' '.join(cmd)}\n{tail}")
        yield LocalServer(f"http://127.0.0.1:{port}", str(folder), port, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
