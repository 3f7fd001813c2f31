"""Colour on a terminal (stderr a real pseudo-terminal): errors, the lifecycle's
timestamps and status words; none with NO_COLOR or when stderr is a pipe."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from tests.conftest import ROOT

ESC = "\033["


def stderr_on_a_tty(*args: str, **env: str) -> tuple[int, str]:
    """Run `python -m wfgen ARGS` with stderr on a pseudo-terminal; (status, stderr)."""
    master, slave = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    environment.update(env)
    proc = subprocess.Popen([sys.executable, "-m", "wfgen", *args], stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL, env=environment)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: every writer is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    proc.communicate(timeout=120)
    return proc.returncode, b"".join(chunks).decode("utf-8", errors="replace")


def test_an_error_is_red_on_a_terminal_and_plain_with_no_color():
    status, text = stderr_on_a_tty("generate", "/no/such/job.yaml")
    assert status == 2 and f"{ESC}1;31mwfgen:{ESC}0m /no/such/job.yaml" in text, repr(text)
    status, text = stderr_on_a_tty("generate", "/no/such/job.yaml", NO_COLOR="1")
    assert status == 2 and ESC not in text and "wfgen: /no/such/job.yaml" in text


def test_the_lifecycle_colours_timestamps_and_status_words_on_a_terminal():
    job = str(ROOT / "examples" / "hello.yaml")
    status, text = stderr_on_a_tty("run", "--local", "--on-host", job)
    assert status == 0, text
    assert f"{ESC}2mwfgen [" in text and f"execution {ESC}32msucceeded{ESC}0m" in text, text
    plain = subprocess.run([sys.executable, "-m", "wfgen", "run", "--local", "--on-host", job],
                           capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and ESC not in plain.stderr  # a pipe: no colour
