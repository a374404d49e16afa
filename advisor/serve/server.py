"""Running the service under uvicorn: in the foreground (`advisor serve`), or on a free localhost
port in a background thread for as long as a `with` block lasts (the analysis's latency
measurement and the tests)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn

from advisor.core.errors import InputError
from advisor.serve.app import Service, create_app

START_SECONDS = 30.0
GRACEFUL_SECONDS = 10


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one); InputError when it cannot."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host!r}: {exc.strerror or exc}", where="--host"
        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", where="--port"
        ) from None
    return sock


def address(sock: socket.socket) -> str:
    """The base URL of a listening socket."""
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _server(
    service: Service, on_ready: Callable[[], None] | None = None, **options
) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(service, on_ready),
        lifespan="on",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        **options,
    )
    return uvicorn.Server(config)


def serve(
    service: Service, host: str, port: int, announce: Callable[[str], None] | None = None
) -> None:
    """Serve until interrupted (SIGINT or SIGTERM), then write what the log holds and stop;
    `announce` hears the address once the service is warm and listening."""
    sock = bind(host, port)
    ready = (lambda: announce(address(sock))) if announce else None
    _server(service, ready, log_level="warning").run(sockets=[sock])


@contextmanager
def running(service: Service, host: str = "127.0.0.1") -> Iterator[str]:
    """The service on a free port of `host` in a background thread; yields its base URL and
    stops it (its prediction log written and closed) when the block ends."""
    sock = bind(host, 0)
    server = _server(service, None, log_config=None, log_level="warning")
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="advisor-serve", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the service did not start")
        time.sleep(0.005)
    try:
        yield address(sock)
    finally:
        server.should_exit = True
        thread.join(GRACEFUL_SECONDS + 5)
        sock.close()


def serve_bundles(
    bundle: str,
    *,
    host: str,
    port: int,
    log: str | None = None,
    log_max_bytes: int | None = None,
    log_sync: str = "process",
    on_log_failure: str = "refuse",
    shadow: str | None = None,
    treatment: str | None = None,
    share: float = 0.05,
    salt: str | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """`advisor serve`: load and check every bundle, open the log folder, then serve."""
    from advisor.serve.app import Served
    from advisor.serve.predictionlog import MAX_FILE_BYTES, PredictionLog

    control = Served.load(bundle)
    service = Service(
        control,
        treatment=Served.load(treatment) if treatment else None,
        share=share,
        salt=salt,
        shadow=Served.load(shadow) if shadow else None,
        log=PredictionLog(
            log,
            sync=log_sync,
            on_failure=on_log_failure,
            max_bytes=log_max_bytes or MAX_FILE_BYTES,
        )
        if log
        else None,
    )

    def ready(url: str) -> None:
        if announce:
            announce(describe(service, url))

    serve(service, host, port, ready)


def describe(service: Service, url: str) -> str:
    """What `advisor serve` says when it listens."""
    p = service.control.policy
    lines = [
        f"serving {p.name!r} ({p.version}) at {url} (POST /decide; GET /health, /version, /metrics)"
    ]
    if service.treatment:
        t = service.treatment.policy
        lines.append(
            f"treatment {t.name!r} ({t.version}) for {service.decider.share:.1%} of units "
            "(salted SHA-256 of the unit)"
        )
    if service.shadow:
        s = service.shadow.policy
        lines.append(f"shadow {s.name!r} ({s.version}) decides every request, logged only")
    if service.log:
        log = service.log
        when = "before each answer" if log.waits else "after each answer"
        fsync = ", fsynced" if log.sync == "disk" else ""
        failing = "refused (503)" if log.refuses else "answered, the line dropped"
        lines.append(
            f"prediction log: {log.folder} (written {when}{fsync}; a decision it cannot record "
            f"is {failing})"
        )
    return "\n".join(lines)
