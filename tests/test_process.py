"""Process control in one place (kinfra.adapters.process): the environment
merge, the staged stop of a whole process group, and the launcher seam."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kinfra.adapters.process import (
    HOST,
    Launch,
    StopReason,
    child_env,
    group_alive,
    stop_group,
    stream_process,
)
from kinfra.adapters.runner import stream


def test_child_env_is_ours_with_the_callers_variables_on_top(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KINFRA_TEST_A", "ours")
    env = child_env({"KINFRA_TEST_A": "theirs", "KINFRA_TEST_B": "new"})
    assert env is not None
    assert (env["KINFRA_TEST_A"], env["KINFRA_TEST_B"], env["PATH"]) == (
        "theirs",
        "new",
        os.environ["PATH"],
    )
    assert child_env(None) is None  # inherit as it is


# A group leader that ignores SIGINT, records each signal it gets, and exits on
# SIGTERM; its child ignores both, so only the group's SIGKILL ends it.
_STUBBORN = """
trap 'echo INT >> "$0.signals"' INT
trap 'echo TERM >> "$0.signals"; exit 0' TERM
sh -c 'trap "" INT TERM; echo $$ > "$0.child"; while :; do sleep 0.1; done' "$0" &
echo started
while :; do sleep 0.1; done
"""


def test_the_staged_stop_reaches_the_whole_group(tmp_path: Path) -> None:
    script = tmp_path / "stubborn.sh"
    script.write_text(_STUBBORN)
    pids: list[int] = []
    started = time.monotonic()
    result = stream_process(
        ["sh", str(script)],
        cwd=tmp_path,
        on_line=lambda line: None,
        idle_timeout=1.0,
        grace=0.5,
        on_start=pids.append,
    )
    assert result.stop is StopReason.IDLE
    assert time.monotonic() - started < 10
    assert (tmp_path / "stubborn.sh.signals").read_text().split() == ["INT", "TERM"]
    child = int((tmp_path / "stubborn.sh.child").read_text())
    assert not group_alive(pids[0])
    assert not _running(child)  # ignored INT and TERM: the SIGKILL got it
    assert not stop_group(pids[0], 0.5)  # nothing left to stop


def test_output_closed_early_is_not_mistaken_for_the_end(tmp_path: Path) -> None:
    # e.g. a setup command writing its log to a file: no output, still working
    result = stream_process(
        ["sh", "-c", "exec >/dev/null; sleep 1; exit 7"], cwd=tmp_path, on_line=lambda line: None
    )
    assert (result.stop, result.returncode) == (StopReason.EXITED, 7)


class _RecordingLauncher:
    """What an agent container's launcher does, on the host: rewrite the
    command line, deliver the stop signals itself."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def launch(self, spec: Launch) -> Launch:
        return Launch(("env", "KINFRA_LAUNCHED=yes", *spec.argv), spec.cwd, spec.env)

    def send_signal(self, pgid: int, signum: int) -> None:
        self.signals.append(signum)
        HOST.send_signal(pgid, signum)


def test_a_launcher_wraps_the_command_and_delivers_the_stop(tmp_path: Path) -> None:
    launcher = _RecordingLauncher()
    lines: list[str] = []
    result = stream_process(
        ["sh", "-c", 'echo "launched=$KINFRA_LAUNCHED extra=$EXTRA"; exec sleep 60'],
        cwd=tmp_path,
        on_line=lines.append,
        env={"EXTRA": "kept"},
        timeout=1.0,
        grace=0.5,
        launcher=launcher,
    )
    assert lines == ["launched=yes extra=kept"]
    assert result.stop is StopReason.TIMEOUT
    assert launcher.signals == [signal.SIGINT]  # sleep ends on the first stop signal


def test_an_interrupted_stream_stops_the_commands_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"

    def interrupt(line: str) -> None:
        raise KeyboardInterrupt

    started = time.monotonic()
    try:
        # a background job of a script ignores SIGINT: TERM, after the grace, ends it
        command = f"sleep 60 & echo $! > {pidfile}; echo ready; wait"
        stream(["sh", "-c", command], on_line=interrupt, grace=1.0)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interrupt did not come through")
    assert time.monotonic() - started < 20
    assert not _running(int(pidfile.read_text()))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")
