"""`python <args>` for the end-to-end tests, started as a fork of a process that has already
imported torch, Lightning, transformers and bertlab (tests/helpers/zygote_server.py says how and
why): a test that needs a real process pays milliseconds to start one, not 5-7 s of imports.

`Process` has the part of subprocess.Popen the tests use (pid, send_signal, kill, wait, returncode,
args) and `run` that of subprocess.run with capture_output and text. One server per environment
(see the server's docstring), started on first use and ended with the test process; an environment
seen for the first time pays the imports once, as a plain subprocess would.

BERTLAB_TEST_FORK=0 starts every process as a fresh interpreter instead (subprocess.Popen), to
rule the server out when a test fails.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

SERVER = Path(__file__).resolve().parent / "zygote_server.py"
KEEP = 3  # servers kept at once (one per environment); the oldest is ended first (each holds ~0.5 GB)
# Variables no module the server imports reads, so they need no server of their own: the run reads
# them after the fork has its environment (zygote_server.become). PYTEST_CURRENT_TEST: set by pytest
# for each test. W&B's, MLflow's and the netrc: W&B and MLflow are imported by the run, never by the
# server (it checks that it has not imported them). A test's own W&B setup (a key, a server URL,
# offline mode) then forks from the warm server instead of paying 6-8 s of imports for a new one.
RUN_TIME = ("PYTEST_CURRENT_TEST", "WANDB_", "MLFLOW_", "NETRC")
_servers: dict[tuple, _Server] = {}
_lock = threading.Lock()


def enabled() -> bool:
    return os.environ.get("BERTLAB_TEST_FORK", "1") != "0" and sys.platform == "linux"


class _Server:
    def __init__(self, env: dict, cwd: Path):
        # a Unix socket's path holds at most 107 bytes: a long TMPDIR gives way to /tmp
        self.folder = tempfile.mkdtemp(
            prefix="bertlab-zygote-", dir=None if len(tempfile.gettempdir()) < 60 else "/tmp"
        )
        self.path = os.path.join(self.folder, "socket")
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), self.path],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,  # not a pytest-xdist worker's stdin, which is its channel to the controller
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self.proc.stdout.readline()  # the imports are done and the socket listens
        if ready.strip() != "ready":
            raise RuntimeError(f"the test process server did not start (exit {self.proc.wait()})")

    def start(self, argv: list[str], cwd: Path, env: dict, stdout: Path, stderr: Path) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(self.path)
        request = {"argv": argv, "cwd": str(cwd), "env": env, "stdout": str(stdout), "stderr": str(stderr)}
        conn.sendall((json.dumps(request) + "\n").encode())
        return conn

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _server(env: dict, cwd: Path) -> _Server:
    key = tuple(sorted((k, v) for k, v in env.items() if not k.startswith(RUN_TIME)))
    with _lock:
        if key not in _servers:
            while len(_servers) >= KEEP:
                _servers.pop(next(iter(_servers))).close()
            _servers[key] = _Server(env, cwd)
        return _servers[key]


@atexit.register
def _close_all() -> None:
    while _servers:
        _servers.popitem()[1].close()


class Process:
    """`python *argv` in `cwd`, its output written to the files `stdout` and `stderr`."""

    def __init__(self, argv: list[str], cwd: Path, env: dict, stdout: Path, stderr: Path):
        self.args = [sys.executable, *argv]
        self.returncode = None
        self.stopped = None  # the signal that stopped it, while it is stopped
        self._events = _server(env, cwd).start(argv, cwd, env, stdout, stderr).makefile()
        self.pid = int(self._read("pid"))

    def _read(self, *kinds: str) -> str:
        line = self._events.readline().split()
        if not line or line[0] not in kinds:
            raise RuntimeError(f"the test process server answered {line!r} (expected {'/'.join(kinds)})")
        if line[0] == "exit":
            self.returncode, self.stopped = int(line[1]), None
        elif line[0] == "stopped":
            self.stopped = int(line[1])
        return line[1]

    def wait_stopped_or_ended(self, timeout: float | None = None) -> None:
        """Until the process stops (SIGSTOP) or ends: `stopped` or `returncode` says which. A process
        still running after `timeout` is killed and so ends (its output tells the caller why)."""
        with _guard(self, timeout, raises=False):
            self._read("stopped", "exit")

    def wait(self, timeout: float | None = None) -> int:
        with _guard(self, timeout):
            while self.returncode is None:
                self._read("stopped", "exit")
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _guard:
    """Kill the process if the wait outlasts `timeout` (then raise TimeoutExpired, as subprocess
    does, unless `raises` is False)."""

    def __init__(self, process, timeout: float | None, raises: bool = True):
        self.process, self.timeout, self.raises, self.fired = process, timeout, raises, False

    def _fire(self):
        self.fired = True
        self.process.kill()

    def __enter__(self):
        self.timer = threading.Timer(self.timeout, self._fire) if self.timeout else None
        if self.timer:
            self.timer.start()

    def __exit__(self, *exc):
        if self.timer:
            self.timer.cancel()
        if self.fired and self.raises:
            raise subprocess.TimeoutExpired(self.process.args, self.timeout)


def run(argv: list[str], cwd: Path, env: dict, timeout: float | None = None) -> subprocess.CompletedProcess:
    """subprocess.run([sys.executable, *argv], capture_output=True, text=True, ...), forked."""
    if not enabled():
        return subprocess.run(
            [sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    with tempfile.TemporaryDirectory(prefix="bertlab-run-") as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        process = Process(argv, cwd, env, out, err)
        process.wait(timeout)
        return subprocess.CompletedProcess(process.args, process.returncode, out.read_text(), err.read_text())


def start(argv: list[str], cwd: Path, env: dict, stdout: Path, stderr: Path) -> Process | Popen:
    """`python *argv` running, its output in the files `stdout` and `stderr`: a fork of the server,
    or a fresh interpreter where the server is off."""
    return (Process if enabled() else Popen)(argv, cwd, env, stdout, stderr)


class Popen(subprocess.Popen):
    """A fresh interpreter with Process's wait_stopped_or_ended (BERTLAB_TEST_FORK=0)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict, stdout: Path, stderr: Path):
        with open(stdout, "w") as out, open(stderr, "w") as err:
            super().__init__([sys.executable, *argv], cwd=cwd, env=env, stdout=out, stderr=err)
        self.stopped = None

    def wait_stopped_or_ended(self, timeout: float | None = None) -> None:
        with _guard(self, timeout, raises=False):
            _, status = os.waitpid(self.pid, os.WUNTRACED)
        if os.WIFSTOPPED(status):
            self.stopped = os.WSTOPSIG(status)
        else:  # reaped here, so Popen cannot see its code
            self.returncode = os.waitstatus_to_exitcode(status)
