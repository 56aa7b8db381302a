"""`ferrymq serve` on a busy port: one line naming the listener, the port and the flag, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(("listener", "flag"), [("AMQP 0-9-1", "--amqp-port"), ("HTTP", "--http-port")])
def test_serve_on_a_busy_port_prints_one_line_naming_listener_port_and_flag(
    tmp_path: Path, listener: str, flag: str,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = {"--amqp-port": "0", "--kafka-port": "0", "--http-port": "0", flag: str(port)}
        args = [arg for pair in ports.items() for arg in pair]
        done = subprocess.run(
            [sys.executable, "-m", "ferrymq.cli", "serve", "--data-dir", str(tmp_path / "d"),
             "--log-level", "error", *args],
            capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("ferrymq:")]
    assert len(lines) == 1, done.stderr
    assert f"{listener} listener on 127.0.0.1:{port}" in lines[0] and flag in lines[0]
    assert "address already in use" in lines[0]
