"""Servers on 127.0.0.1 that stand in for an unreachable W&B or Hugging Face host (tests never
leave the machine): a closed port, one that accepts connections and never answers, and one that
answers every request with 404 (a reachable server)."""

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def closed_port() -> Iterator[str]:
    """A URL whose port refuses connections: bound, so no one else takes it, but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A URL whose server accepts every connection and never sends a byte (a firewall that swallows)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # the listening socket was shut down: done
            while True:
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        server.close()
        thread.join()
        for conn in held:
            conn.close()


@contextlib.contextmanager
def answering_server() -> Iterator[str]:
    """A URL whose server answers everything with 404, as an API root often does."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_error(404)

        do_GET = do_HEAD

        def log_message(self, *args):  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
