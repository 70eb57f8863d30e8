"""A Python process that has imported torch, Lightning, transformers and bertlab once, and forks a
ready copy of itself for each `python <script> ...` the tests start (tests/helpers/zygote.py).

Why: an end-to-end test that needs a real process (exit codes, signals, kills and resume) paid
5-7 s of imports per start on 2 cores, most of the suite's time; a fork of this process starts in
milliseconds. The run is still a process of its own (its own pid, signals, exit code, stdout and
stderr files) that runs the script as `__main__`, and it ends as Python ends a script (an uncaught
exception's traceback and exit 1, SystemExit's code, atexit handlers, Ctrl-C's SIGINT death).

What differs from a fresh interpreter, and why that is safe here: the modules above are imported
before the script starts (the tests that are about start-up and imports start a fresh interpreter:
tests/e2e/test_startup.py), and the environment is the server's: the helper keeps one server per
environment, because libraries read some variables when they are imported (huggingface_hub's
HF_HUB_OFFLINE and HF_ENDPOINT, PYTHONPATH), but for those nothing imported here reads (zygote.RUN_TIME:
W&B's, MLflow's), which the fork sets.

Protocol, one connection per run on a Unix socket: the client sends one JSON line {argv, cwd, env,
stdout, stderr}; a supervisor (a fork of the server, so the server itself never waits and stays
single-threaded) forks the run and answers `pid N`, then `stopped SIG` each time the run stops and
`exit CODE` (a negative code: killed by that signal) when it ends, as subprocess reports it.
"""

import ctypes
import json
import os
import runpy
import signal
import socket
import sys

PR_SET_PDEATHSIG = 1


def serve(path: str) -> dict:
    """Accept requests forever; returns only in a forked run, with its request."""
    # the server ends with the test process that started it, however that one ends
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    from bertlab.core.gc_pause import collector_paused

    # as a run does (run/entry.py): no garbage collection while importing, then what exists frozen,
    # which also spares the forks copying the pages a collection would write to
    with collector_paused():
        import lightning  # noqa: F401
        import torch  # noqa: F401

        # What every run that loads a model pays once per process, done here once per server: BERT's
        # modelling code (0.2 s; the tiny model and MiniLM are BERTs) and the table of weight
        # conversions transformers builds in the first from_pretrained (0.05-0.1 s: ~950 regular
        # expressions; a pure function of the installed transformers). Start-up itself is measured in
        # fresh interpreters (tests/e2e/test_startup.py, scripts/bench.py), never in a fork of this server.
        import transformers.models.bert.modeling_bert  # noqa: F401

        try:
            from transformers.conversion_mapping import get_checkpoint_conversion_mapping
        except ImportError:  # a transformers without the table
            pass
        else:
            get_checkpoint_conversion_mapping("bert")

        import bertlab.run.app  # noqa: F401  (Hydra, OmegaConf and the package: the rest of a run's imports)

    # zygote.RUN_TIME: the servers are shared across W&B's and MLflow's variables because neither is
    # imported here (a run imports them after the fork); a change that imports one early must say so
    early = sorted({m.split(".")[0] for m in sys.modules} & {"wandb", "mlflow"})
    if early:
        raise SystemExit(f"the server imported {early}: their variables must then key the servers (zygote.RUN_TIME)")

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        if os.fork() == 0:
            server.close()
            return _supervise(conn)  # returns only in the run
        conn.close()


def _supervise(conn: socket.socket) -> dict:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the run's own subprocesses need it, and so does waitpid
    request = json.loads(conn.makefile().readline())
    pid = os.fork()
    if pid == 0:
        conn.close()
        return request
    try:
        conn.sendall(f"pid {pid}\n".encode())
        while True:
            _, status = os.waitpid(pid, os.WUNTRACED)
            if os.WIFSTOPPED(status):
                conn.sendall(f"stopped {os.WSTOPSIG(status)}\n".encode())
                continue
            conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
            break
    except OSError:  # the test went away (it failed or timed out): the run goes too
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os._exit(0)


def become(request: dict) -> None:
    """Turn this fork into `python <argv>` in `cwd` with its output in the two files, then run it."""
    os.chdir(request["cwd"])
    os.environ.clear()  # the server's own, but for the variables no import reads (zygote.RUN_TIME)
    os.environ.update(request["env"])
    for fd, name, flags in (
        (0, os.devnull, os.O_RDONLY),
        (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        opened = os.open(name, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    argv = request["argv"]
    if argv[0] == "-m":
        sys.argv, sys.path[0] = [argv[1], *argv[2:]], os.getcwd()
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    elif argv[0] == "-c":
        sys.argv, sys.path[0] = ["-c", *argv[2:]], ""
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
    else:
        script = os.path.abspath(argv[0])
        sys.argv, sys.path[0] = [argv[0], *argv[1:]], os.path.dirname(script)
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    # the run falls off the end of this script: Python then exits as it does after any script
    become(serve(sys.argv[1]))
