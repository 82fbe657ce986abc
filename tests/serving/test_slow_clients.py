"""A handful of slow clients must not starve `make run`: sockets that send their request a byte at a time each hold
a thread, not a whole worker, and /health keeps answering while they trickle."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

from tests.serving.servers import served_like_make_run, stop

SLOW_CLIENTS = 6  # twice what took the sync workers down


def trickle(port: int, until: float) -> None:
    """A request line, then a header one byte a second, never finished."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        for byte in b"X-Slow: " + b"x" * 60:
            if time.monotonic() > until:
                return
            try:
                client.sendall(bytes([byte]))
            except OSError:  # the server gave up on us: that is allowed
                return
            time.sleep(1)


def test_health_answers_while_slow_clients_trickle_their_requests(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server, port = served_like_make_run(home, f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    until = time.monotonic() + 12
    slow = [threading.Thread(target=trickle, args=(port, until), daemon=True) for _ in range(SLOW_CLIENTS)]
    try:
        for client in slow:
            client.start()
        time.sleep(2)  # every slow client is connected and holding whatever it holds
        waits = []
        for _ in range(5):
            started = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=5) as answer:
                assert answer.status == 200
            waits.append(time.monotonic() - started)
            time.sleep(1)
        assert max(waits) < 2, waits
    finally:
        stop(server)
        for client in slow:
            client.join(timeout=15)
