"""A stand-in for the Tinker service on 127.0.0.1, for tests: the real SDK talks HTTP to it.

It answers the SDK's requests (client config, sessions, heartbeats, telemetry, capabilities,
create_model, get_info, forward_backward, optim_step, save/load weights, retrieve_future) with
responses built from the SDK's own types: pydantic models dumped to JSON, and the SDK's protobuf
messages (``tinker.proto.tinker_public_pb2``) for ``ForwardBackwardOutput``. Requests are parsed
the same way (the forward/backward body is the SDK's protobuf). Behind it, each model is trained
by occamlab's own :class:`~occamlab.train.LocalTrainingClient` on a tiny byte-level
:class:`~occamlab.train.Transformer`, so losses, saved states and resumption are real.

Faults for tests: ``faults[path]`` is a list of HTTP statuses returned (with ``retry-after-ms``)
before that path succeeds again; ``fail_requests[n]`` fails the n-th forward/backward request
(counted from 1) with ``(category, message)`` as the service's failed-future answer;
``fail_models[name]`` fails model creation for that base model with a message; ``delay`` slows
every training step. Nothing in occamlab is patched.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from occamlab.train import AdamParams, Datum, LocalTrainingClient, ModelConfig, Transformer

PROTO = "application/x-protobuf"


def tiny_models(sizes: dict[str, int], *, context: int = 32, seed: int = 0
                ) -> dict[str, Transformer]:
    """Byte-level base models named ``name -> d_model`` (random initialisation, seeded)."""
    return {name: Transformer(ModelConfig(vocab_size=256, context=context, d_model=d, n_layer=1,
                                          n_head=2), seed=seed)
            for name, d in sizes.items()}


class StandIn:
    """The service's state: sessions, models, futures, saved states, faults and a request log."""

    def __init__(self, models: dict[str, Transformer], key: str) -> None:
        import tinker  # noqa: F401  (the SDK's types build every answer)

        self.models, self.key = models, key
        self.lock = threading.Lock()
        self.sessions: set[str] = set()
        self.clients: dict[str, LocalTrainingClient] = {}
        self.model_base: dict[str, str] = {}
        self.futures: dict[str, tuple[str, Any]] = {}
        self.saved: dict[str, tuple[str, int, str]] = {}  # tinker path -> (base, rank, dir)
        self.state_dir = Path(tempfile.mkdtemp(prefix="tinker-standin-"))
        self.faults: dict[str, list[int]] = {}
        self.fail_requests: dict[int, tuple[str, str]] = {}
        self.fail_models: dict[str, str] = {}
        self.n_forward_backward = 0
        self.delay = 0.0  # seconds added to every training forward/backward request
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.keys_seen: set[str] = set()
        self.server: ThreadingHTTPServer | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> str:
        standin = self

        class Handler(_Handler):
            service = standin

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def count(self, path: str) -> int:
        return sum(p == path for p, _ in self.log)

    # ---- futures -------------------------------------------------------------------------------
    def _future(self, kind: str, value: Any, model_id: str | None = None) -> dict[str, Any]:
        from tinker import types

        rid = uuid.uuid4().hex
        self.futures[rid] = (kind, value)
        return types.UntypedAPIFuture(request_id=rid, model_id=model_id).model_dump(mode="json")

    def _failed(self, category: str, message: str) -> tuple[str, Any]:
        from tinker import types

        return ("json", types.RequestFailedResponse(
            error=message, category=types.RequestErrorCategory(category)).model_dump(mode="json"))

    # ---- the endpoints -------------------------------------------------------------------------
    def answer(self, path: str, body: Any) -> tuple[int, str, bytes]:
        from tinker import types

        def js(model: Any) -> tuple[int, str, bytes]:
            data = model.model_dump(mode="json") if hasattr(model, "model_dump") else model
            return 200, "application/json", json.dumps(data).encode()

        if path == "/api/v1/client/config":
            return js(types.ClientConfigResponse(pjwt_auth_enabled=False,
                                                 use_pyqwest_transport=False))
        if path == "/api/v1/client/dynamic_config":
            return js(types.ClientDynamicConfigResponse())
        if path == "/api/v1/create_session":
            sid = f"session-{uuid.uuid4().hex[:8]}"
            self.sessions.add(sid)
            return js(types.CreateSessionResponse(session_id=sid))
        if path == "/api/v1/session_heartbeat":
            return js(types.SessionHeartbeatResponse())
        if path == "/api/v1/telemetry":
            return js(types.TelemetryResponse(status="accepted"))
        if path == "/api/v1/get_server_capabilities":
            from tinker.types.get_server_capabilities_response import SupportedModel

            return js(types.GetServerCapabilitiesResponse(supported_models=[
                SupportedModel(model_name=n, max_context_length=m.config.context, trainable=True,
                               sampleable=False) for n, m in self.models.items()]))
        if path.startswith("/api/v1/sessions/") and path.endswith("/finish"):
            return 200, "application/json", b"null"
        handler = {"/api/v1/create_model": self.create_model, "/api/v1/get_info": self.get_info,
                   "/api/v1/forward_backward": self.forward_backward,
                   "/api/v1/optim_step": self.optim_step, "/api/v1/save_weights": self.save,
                   "/api/v1/load_weights": self.load,
                   "/api/v1/retrieve_future": self.retrieve}.get(path)
        if handler is None:
            return 404, "application/json", json.dumps({"detail": f"no {path}"}).encode()
        return handler(body)

    def _client(self, base: str, rank: int, seed: int | None) -> LocalTrainingClient:
        return LocalTrainingClient(self.models[base], rank=rank, seed=seed or 0,
                                   state_dir=self.state_dir, base_model=base)

    def create_model(self, req: dict[str, Any]) -> tuple[int, str, bytes]:
        from tinker import types

        r = types.CreateModelRequest.model_validate(req)
        model_id = f"{r.session_id}:train:{r.model_seq_id}"
        base = r.base_model
        if base in self.fail_models:
            return self.futures_json(model_id, self._failed("user", self.fail_models[base]))
        assert r.lora_config is not None
        self.clients[model_id] = self._client(base, r.lora_config.rank, r.lora_config.seed)
        self.model_base[model_id] = base
        return self.futures_json(model_id, ("json", types.CreateModelResponse(
            model_id=model_id).model_dump(mode="json")))

    def futures_json(self, model_id: str, outcome: tuple[str, Any]) -> tuple[int, str, bytes]:
        """The answer to a request whose result is ``outcome``: the future to retrieve it by."""
        fut = self._future(*outcome, model_id=model_id)
        return 200, "application/json", json.dumps(fut).encode()

    def get_info(self, req: dict[str, Any]) -> tuple[int, str, bytes]:
        from tinker import types

        mid = types.GetInfoRequest.model_validate(req).model_id
        info = types.GetInfoResponse(model_id=mid, model_data=types.ModelData(
            arch="occamlab-transformer", model_name=self.model_base[mid], tokenizer_id=None))
        return 200, "application/json", json.dumps(info.model_dump(mode="json")).encode()

    def forward_backward(self, proto: Any) -> tuple[int, str, bytes]:
        client = self.clients[proto.model_id]
        batch = [_datum(d) for d in proto.data]
        if not proto.forward_only:
            self.n_forward_backward += 1
            failure = self.fail_requests.pop(self.n_forward_backward, None)
            if failure is not None:
                return self.futures_json(proto.model_id, self._failed(*failure))
        fut = (client.forward if proto.forward_only else client.forward_backward)(batch)
        return self.futures_json(proto.model_id, ("proto", _fb_output(fut.result())))

    def optim_step(self, req: dict[str, Any]) -> tuple[int, str, bytes]:
        from tinker import types

        r = types.OptimStepRequest.model_validate(req)
        p = r.optim_params
        self.clients[r.model_id].optim_step(AdamParams(
            learning_rate=p.learning_rate, beta1=p.beta1, beta2=p.beta2, eps=p.eps,
            weight_decay=p.weight_decay, grad_clip_norm=p.grad_clip_norm)).result()
        return self.futures_json(r.model_id, ("json", types.OptimStepResponse(
            metrics={}).model_dump(mode="json")))

    def save(self, req: dict[str, Any]) -> tuple[int, str, bytes]:
        from tinker import types

        r = types.SaveWeightsRequest.model_validate(req)
        mid = r.model_id
        client = self.clients[mid]
        local = client.save_state(f"{uuid.uuid4().hex[:8]}-{r.path}").result()
        path = f"tinker://{mid.replace(':', '-')}/weights/{r.path}"
        self.saved[path] = (self.model_base[mid], client.rank, local)
        return self.futures_json(mid, ("json", types.SaveWeightsResponse(
            path=path, type="save_weights").model_dump(mode="json")))

    def load(self, req: dict[str, Any]) -> tuple[int, str, bytes]:
        from tinker import types

        from occamlab.train._loop import _restore_trainable

        r = types.LoadWeightsRequest.model_validate(req)
        mid = f"{r.session_id}:train:{r.model_seq_id}"
        if r.path not in self.saved:
            return self.futures_json(mid, self._failed("user", f"checkpoint {r.path} not found"))
        base, rank, local = self.saved[r.path]
        client = self._client(base, rank, 0)
        if r.optimizer:
            client.load_state(local).result()
        else:  # weights only: the optimizer starts afresh
            _restore_trainable(client._model, Path(local))
        self.clients[mid], self.model_base[mid] = client, base
        return self.futures_json(mid, ("json", types.LoadWeightsResponse(
            path=r.path, model_id=mid, type="load_weights").model_dump(mode="json")))

    def retrieve(self, req: dict[str, Any]) -> tuple[int, str, bytes]:
        from tinker import types

        kind, value = self.futures.pop(types.FutureRetrieveRequest.model_validate(req).request_id)
        if kind == "proto":
            return 200, PROTO, value
        return 200, "application/json", json.dumps(value).encode()


def _datum(d: Any) -> Datum:
    from tinker.proto import tinker_public_pb2 as pb

    tokens = np.concatenate([np.frombuffer(c.encoded_text.tokens, np.int32) for c in d.model_input])

    def tensor(t: Any) -> np.ndarray:
        dtype = {pb.DTYPE_FLOAT32: np.float32, pb.DTYPE_INT64: np.int64}[t.dtype]
        return np.frombuffer(t.dense, dtype)

    w = d.loss_fn_inputs["weights"] if "weights" in d.loss_fn_inputs else None
    return Datum(tokens.astype(np.int64), tensor(d.loss_fn_inputs["target_tokens"]),
                 None if w is None else tensor(w))


def _fb_output(out: Any) -> bytes:
    """A ``ForwardBackwardOutput`` as the SDK's protobuf: one ArrayRecord of ``logprobs``."""
    from tinker.proto import tinker_public_pb2 as pb

    lps = [np.asarray(lp, np.float32) for lp in out.logprobs]
    offsets = np.cumsum([0] + [lp.nbytes for lp in lps]).astype(np.int64)
    record = pb.ArrayRecord(type_tag="ArrayRecord", num_datums=len(lps))
    record.fields["logprobs"].CopyFrom(pb.BatchedTensor(
        data=b"".join(lp.tobytes() for lp in lps), offsets=offsets.tobytes(),
        dtype=pb.DTYPE_FLOAT32))
    msg = pb.ForwardBackwardOutput(loss_fn_output_type="ArrayRecord", loss_fn_outputs=[record],
                                   metrics={"loss:sum": float(out.loss)})
    return msg.SerializeToString()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    service: StandIn

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return None

    def _send(self, status: int, ctype: str, data: bytes, headers: dict[str, str] | None = None
              ) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        svc = self.service
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        path = self.path.split("?")[0]
        key = self.headers.get("x-api-key", "")
        svc.keys_seen.add(key)
        if key != svc.key:
            self._send(401, "application/json", b'{"detail": "invalid API key"}')
            return
        with svc.lock:
            queued = svc.faults.get(path)
            if queued:
                status = queued.pop(0)
                svc.log.append((path, {"fault": status}))
                self._send(status, "application/json",
                           json.dumps({"detail": f"stand-in fault {status}"}).encode(),
                           {"retry-after-ms": "20"})
                return
            if path == "/api/v1/forward_backward":
                from tinker.proto import tinker_public_pb2 as pb

                body: Any = pb.ForwardBackwardRequest()
                body.ParseFromString(raw)
                if svc.delay and not body.forward_only:
                    time.sleep(svc.delay)
                svc.log.append((path, {"model_id": body.model_id,
                                       "forward_only": body.forward_only}))
            else:
                body = json.loads(raw) if raw else {}
                svc.log.append((path, body if isinstance(body, dict) else {}))
            try:
                status, ctype, data = svc.answer(path, body)
            except Exception as exc:  # a bug of the stand-in: a fatal status, not a retry loop
                status, ctype = 422, "application/json"
                data = json.dumps({"detail": f"stand-in error: {exc!r}"}).encode()
        self._send(status, ctype, data)

    do_POST = _handle
    do_GET = _handle
