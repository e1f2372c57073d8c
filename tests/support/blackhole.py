"""A TCP address that drops the handshake, as a vanished Triton host does."""

from __future__ import annotations

import socket


class NeverAccepting:
    """A port whose accept queue is full (backlog 0, one connection held): Linux drops every
    further SYN, as a host that vanished would (no reset, no answer)."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.held = socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def __enter__(self) -> NeverAccepting:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.held.close()
        self.listener.close()
