"""An ASGI app (the gateway) under uvicorn on 127.0.0.1, in a daemon thread, for tests.

The gateway tests and the vendor end-to-end tests call the real server this way, with the
official ``openai`` client on the other side::

    served = serve_in_thread(create_app(config))
    ... openai.OpenAI(base_url=f"http://127.0.0.1:{served.port}/v1", ...) ...
    served.stop()

Needs the ``server`` extra (uvicorn).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any

import uvicorn

__all__ = ["ServedApp", "serve_in_thread"]


@dataclass
class ServedApp:
    """An app being served by uvicorn in a thread.

    Attributes:
        server: The uvicorn server (``server.servers[0].get_loop()`` is the app's loop).
        thread: The thread running it.
        sock: The listening socket, bound to 127.0.0.1.
        port: Its port.
    """

    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket
    port: int

    def stop(self) -> None:
        """Ask uvicorn to exit, join the thread (10 s at most) and close the socket."""
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def serve_in_thread(app: Any) -> ServedApp:
    """Serve ``app`` on a free port of 127.0.0.1 (asyncio loop, httptools, lifespan on).

    Args:
        app: The ASGI application.

    Returns:
        The running server, once uvicorn reports it started.

    Raises:
        RuntimeError: If uvicorn has not started within 5 s.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            loop="asyncio",
            http="httptools",
            ws="none",
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    if not server.started:
        raise RuntimeError("the app did not start under uvicorn within 5 s")
    return ServedApp(server, thread, sock, port)
