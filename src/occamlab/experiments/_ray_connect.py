"""Connecting the Ray backend to a running cluster, with Ray's token authentication.

Ray (2.52 and later) authenticates every control-plane call with one shared token when the
cluster runs with ``RAY_AUTH_MODE=token``; ``ray start --head`` turns that on by itself when a
token exists (2.59 and later; https://docs.ray.io/en/latest/ray-security/token-auth.html). A
client presents the token only if *its* ``RAY_AUTH_MODE`` is ``token``, and Ray reads the token
from, in this order, ``RAY_AUTH_TOKEN``, the file named by ``RAY_AUTH_TOKEN_PATH``, or
``~/.ray/auth_token``. ``ray.init(address="auto")`` switches token mode on when a token is there,
but an explicit address never does, so ``ray.init(address="host:6379")`` came without a token and
Ray's client retried ``InvalidAuthToken`` for a minute before failing.

:func:`connect` does what ``address="auto"`` does, for every address: if ``RAY_AUTH_MODE`` is not
set and Ray would find a token, it sets ``RAY_AUTH_MODE=token`` for this process (a cluster
without authentication ignores the token). The token itself is never read here, copied, logged
or passed on: Ray loads it from its own sources and sends it in its request headers. Then one
request (``GetClusterId``, through Ray's own authenticated channel) tells in a second whether a
cluster answers at the address and accepts the token, so a wrong address or a refused token is
one :class:`~occamlab.errors.OccamError` line naming the address and what to do, not a minute of
retries and a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from occamlab.errors import OccamError

__all__ = ["connect", "token_source", "RayConnectError"]

AUTH_MODE = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
PROBE_TIMEOUT_S = 10.0
WHAT_TO_DO = (f"set {TOKEN_ENV} (or {TOKEN_PATH_ENV}, a file holding it) to the cluster's token "
              "(`ray get-auth-token` on the head node prints it), or run on the head node")


class RayConnectError(OccamError):
    """The Ray cluster at ``--address`` could not be reached or refused this client."""


def _default_token_path() -> Path:
    return Path.home() / ".ray" / "auth_token"


def token_source() -> str | None:
    """Where Ray will read its token from, in Ray's order (a name, never the token), or None.

    Raises
    ------
    RayConnectError
        ``RAY_AUTH_TOKEN_PATH`` names a file that is missing, unreadable or empty (Ray aborts the
        process in that case).
    """
    if os.environ.get(TOKEN_ENV):
        return TOKEN_ENV
    path = os.environ.get(TOKEN_PATH_ENV)
    if path:
        p = Path(path)
        if not (p.is_file() and os.access(p, os.R_OK) and p.stat().st_size > 0):
            raise RayConnectError(f"{TOKEN_PATH_ENV}={path} is not a readable, non-empty file "
                                  f"holding the Ray cluster's token; {WHAT_TO_DO}")
        return f"{TOKEN_PATH_ENV} ({path})"
    default = _default_token_path()
    if default.is_file() and default.stat().st_size > 0:
        return str(default)
    return None


def _refresh(ray: Any) -> None:
    """Make Ray re-read ``RAY_AUTH_MODE`` and its token (it caches both per process)."""
    raylet = getattr(ray, "_raylet", None)
    config = getattr(raylet, "Config", None)
    if config is not None:
        config.initialize("")
    loader = getattr(raylet, "AuthenticationTokenLoader", None)
    if loader is not None:
        loader.instance().reset_cache()


def _probe(address: str) -> tuple[str, str] | None:
    """One ``GetClusterId`` call to the cluster's GCS through Ray's own (authenticated) channel.

    Returns None when the cluster answered, else ``(kind, detail)`` with kind ``unreachable`` or
    ``refused``; also None when Ray's internals this uses are not there (then ``ray.init``
    reports what goes wrong, more slowly).
    """
    try:
        import grpc
        from ray._private.grpc_utils import init_grpc_channel
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:
        return None
    channel = init_grpc_channel(address)
    try:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        request = gcs_service_pb2.GetClusterIdRequest()  # type: ignore[attr-defined]
        stub.GetClusterId(request, timeout=PROBE_TIMEOUT_S)
    except grpc.RpcError as exc:
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return "refused", "InvalidAuthToken"
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return "unreachable", str(code.name)
        return None  # something else: let ray.init say what
    finally:
        channel.close()
    return None


def _plain_address(address: str) -> bool:
    """``HOST:PORT`` (a GCS address we can probe), not ``auto`` nor ``ray://...``."""
    return address != "auto" and "://" not in address and ":" in address


def connect(ray: Any, address: str, init: Callable[[], Any]) -> Callable[[], None]:
    """Connect to the cluster at ``address`` (``init`` calls ``ray.init``) with Ray's token.

    Returns a function that puts ``RAY_AUTH_MODE`` back as it was (call it after
    ``ray.shutdown``).

    Raises
    ------
    RayConnectError
        One line naming the address and what to do: no cluster answers there, or it refused
        this client's token (or its lack of one), or ``ray.init`` failed otherwise.
    """
    mode = os.environ.get(AUTH_MODE)
    source = token_source()
    changed = mode is None and source is not None
    if changed:  # what ray.init(address="auto") does, for an explicit address too
        os.environ[AUTH_MODE] = "token"
    _refresh(ray)

    def restore() -> None:
        if changed and os.environ.get(AUTH_MODE) == "token":
            del os.environ[AUTH_MODE]
            _refresh(ray)

    where = f"the Ray cluster at {address!r}"
    try:
        failure = _probe(address) if _plain_address(address) else None
        if failure is not None:
            kind, detail = failure
            if kind == "unreachable":
                raise RayConnectError(
                    f"no Ray cluster answers at {address!r} ({detail}); start one there "
                    "(`ray start --head --port PORT`) or pass the head node's HOST:PORT")
            todo = WHAT_TO_DO
            if mode is not None and mode.lower() != "token":
                why = f"{AUTH_MODE}={mode} is set here, so no token was sent"
                todo = f"unset {AUTH_MODE} (or set it to token) and {WHAT_TO_DO}"
            elif source is None:
                why = ("no token was found here (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, "
                       f"{_default_token_path()})")
            else:
                why = f"the token from {source} is not the cluster's"
            raise RayConnectError(f"{where} refused this client ({detail}: it uses token "
                                  f"authentication and {why}); {todo}")
        try:
            init()
        except Exception as exc:
            if isinstance(exc, OccamError):
                raise
            first = (str(exc).strip().splitlines() or [""])[0]
            raise RayConnectError(f"could not connect to {where}: {type(exc).__name__}: "
                                  f"{first}") from None
    except BaseException:
        restore()
        raise
    return restore
