"""The Tinker implementation of the training-client protocol (``pip install 'occamlab[tinker]'``).

Tinker (Thinking Machines) trains LoRA adapters of hosted open-weight models behind an HTTP API;
its official SDK (PyPI ``tinker``) is imported only when this backend is chosen. The API key is
read from the environment variable ``TINKER_API_KEY`` and from nowhere else (not the SDK's
stored credentials); it is passed to the SDK and never written by occamlab: error messages that
pass through here have it replaced by ``[TINKER_API_KEY]``. The SDK reads the service's address
from ``TINKER_BASE_URL`` (default: the production service).

:class:`TinkerTrainingClient` maps the protocol onto the SDK one to one: ``forward_backward`` and
``forward`` with the ``cross_entropy`` loss (per-token log-probabilities come back),
``optim_step`` with ``AdamParams``, ``save_state`` (weights and optimizer state, a ``tinker://``
path) and ``load_state`` through ``create_training_client_from_state_with_optimizer`` (the SDK's
way to restore the optimizer's moments too). The SDK already retries rate limits (429) and
transient server errors (5xx) with exponential backoff; what fails after that is a
:class:`ServiceError`, ``transient`` or not, with the service's own message.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from occamlab.errors import ConfigError, OccamError, check_seed
from occamlab.train import (
    AdamParams,
    Datum,
    ForwardOutput,
    check_batch,
    done_future,
    weighted_loss,
)

__all__ = ["INSTALL", "KEY_VAR", "ServiceError", "TinkerService", "TinkerTrainingClient",
           "api_key", "import_tinker", "redact", "service_error"]

INSTALL = "pip install 'occamlab[tinker]'"
KEY_VAR = "TINKER_API_KEY"
_TRANSIENT_STATUS = (408, 409, 429)


class ServiceError(OccamError):
    """The training service failed a request; the message is the service's (key redacted).

    ``transient`` errors (rate limits, server errors, lost connections) may succeed when the
    run resumes from its last saved state; the others (an unknown model, a bad request) not.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def import_tinker() -> ModuleType:
    """The Tinker SDK, or a :class:`ConfigError` saying how to install it."""
    try:
        import tinker
    except ImportError:
        raise ConfigError(f"training_backend = 'tinker' needs the Tinker SDK: {INSTALL}") from None
    return tinker


def api_key() -> str:
    """The key in ``TINKER_API_KEY``, or a :class:`ConfigError` saying where to put it."""
    key = os.environ.get(KEY_VAR, "").strip()
    if not key:
        raise ConfigError(f"training_backend = 'tinker' needs an API key in the environment "
                          f"variable {KEY_VAR} (occamlab reads it from there only and never "
                          "writes it anywhere)")
    return key


def redact(text: str) -> str:
    """``text`` with the API key (if one is set) replaced by ``[TINKER_API_KEY]``."""
    key = os.environ.get(KEY_VAR, "").strip()
    return text.replace(key, f"[{KEY_VAR}]") if key else text


def service_error(exc: BaseException) -> ServiceError:
    """An SDK exception as a :class:`ServiceError`: the service's message, the key redacted."""
    if isinstance(exc, ServiceError):
        return exc
    tinker = import_tinker()
    name = type(exc).__name__
    message = getattr(exc, "message", None) or str(exc) or name
    transient = False
    if isinstance(exc, tinker.RequestFailedError):
        transient = str(getattr(exc, "category", "")).lower() in ("server", "unknown")
    elif isinstance(exc, tinker.APIStatusError):
        status = int(exc.status_code)
        transient = status in _TRANSIENT_STATUS or status >= 500
        message = f"HTTP {status}: {message}"
    elif isinstance(exc, tinker.APIConnectionError | TimeoutError):
        transient = True
    elif name == "RetryableException" or "poisoned" in message:
        transient = True
    return ServiceError(redact(f"{name}: {message}"), transient=transient)


def _guard(fn: Callable[[], Any]) -> Any:
    """Call ``fn``; an SDK exception comes out as a :class:`ServiceError` (no SDK traceback)."""
    try:
        return fn()
    except ConfigError:
        raise
    except Exception as exc:
        err = service_error(exc)
    raise err


class TinkerService:
    """One session with the Tinker service (``ServiceClient``), opened on first use."""

    def __init__(self, *, user_metadata: dict[str, str] | None = None) -> None:
        self.tinker = import_tinker()
        self._key = api_key()
        self._metadata = dict(user_metadata or {})
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _guard(lambda: self.tinker.ServiceClient(
                api_key=self._key, user_metadata=self._metadata or None))
        return self._client

    def models(self) -> list[str]:
        """Names of the base models the service can train (its capabilities list)."""
        rest = _guard(lambda: self.tinker.RestClient(api_key=self._key))
        caps = _guard(lambda: rest.get_server_capabilities().result())
        return [m.model_name for m in caps.supported_models
                if m.model_name and m.trainable is not False]

    def close(self, status: str = "success") -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                client.close(status).result(timeout=30)
            except Exception:  # closing is best effort: the session expires on its own
                pass


class TinkerTrainingClient:
    """A LoRA training client on the Tinker service (the protocol :class:`TrainingClient`).

    The service's client is created on first use (or by :meth:`load_state`, which creates it
    from a saved state with its optimizer), so a resumed run never opens a fresh one first.
    ``modules``: ``all`` (attention and MLP), ``attention`` or ``mlp``; the unembedding is not
    adapted, as in the local implementation.
    """

    backend = "tinker"

    def __init__(self, service: TinkerService, base_model: str, *, rank: int, seed: int = 0,
                 modules: str = "all") -> None:
        if modules not in ("all", "attention", "mlp"):
            raise ConfigError(f"lora_modules {modules!r}: the Tinker backend takes all, "
                              "attention or mlp")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ConfigError(f"lora rank must be a positive integer, got {rank!r}")
        self.service, self.base_model, self.rank = service, base_model, rank
        self.seed, self.modules = check_seed(seed), modules
        self._sdk: Any = None
        # waits on the SDK's futures one at a time: ours complete in submission order
        self._waiter = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="occam-tinker")

    def _client(self) -> Any:
        if self._sdk is None:
            self._sdk = _guard(lambda: self.service.client.create_lora_training_client(
                self.base_model, rank=self.rank, seed=self.seed,
                train_mlp=self.modules in ("all", "mlp"),
                train_attn=self.modules in ("all", "attention"), train_unembed=False).result())
        return self._sdk

    def _submit(self, call: Callable[[], Any], convert: Callable[[Any], Any]) -> cf.Future[Any]:
        """Submit an SDK call now; our future resolves (in order) with ``convert(result)``."""
        try:
            api_future = _guard(call)
        except (ServiceError, ConfigError) as exc:
            return done_future(error=exc)
        return self._waiter.submit(lambda: convert(_guard(api_future.result)))

    def _data(self, batch: list[Datum]) -> list[Any]:
        t = self.service.tinker
        return [t.Datum(model_input=t.ModelInput.from_ints(d.tokens.tolist()),
                        loss_fn_inputs={"target_tokens": d.targets,
                                        "weights": d.weight_array()}) for d in batch]

    def _pass(self, batch: list[Datum], loss: str, *, backward: bool) -> cf.Future[ForwardOutput]:
        try:
            items = check_batch(batch, loss)
            client = self._client()
        except (ConfigError, ServiceError) as exc:
            return done_future(error=exc)
        data = self._data(items)
        method = client.forward_backward if backward else client.forward

        def convert(out: Any) -> ForwardOutput:
            lps = tuple(np.asarray(o["logprobs"].to_numpy(), dtype=np.float32).reshape(-1)
                        for o in out.loss_fn_outputs)
            return ForwardOutput(lps, weighted_loss(items, lps))

        return self._submit(lambda: method(data, loss), convert)

    def tokenizer(self) -> Any:
        """The base model's tokenizer, as the SDK loads it (a Hugging Face tokenizer)."""
        client = self._client()
        return _guard(client.get_tokenizer)

    def forward_backward(self, batch: list[Datum], loss: str = "cross_entropy"
                         ) -> cf.Future[ForwardOutput]:
        return self._pass(batch, loss, backward=True)

    def forward(self, batch: list[Datum], loss: str = "cross_entropy"
                ) -> cf.Future[ForwardOutput]:
        return self._pass(batch, loss, backward=False)

    def optim_step(self, params: AdamParams) -> cf.Future[None]:
        if not isinstance(params, AdamParams):
            return done_future(error=ConfigError("optim_step needs occamlab.train.AdamParams"))
        try:
            client = self._client()
        except ServiceError as exc:
            return done_future(error=exc)
        adam = self.service.tinker.AdamParams(
            learning_rate=params.learning_rate, beta1=params.beta1, beta2=params.beta2,
            eps=params.eps, weight_decay=params.weight_decay,
            grad_clip_norm=params.grad_clip_norm)
        return self._submit(lambda: client.optim_step(adam), lambda _: None)

    def save_state(self, name: str) -> cf.Future[str]:
        try:
            client = self._client()
        except ServiceError as exc:
            return done_future(error=exc)
        return self._submit(lambda: client.save_state(name, overwrite=True),
                            lambda out: str(out.path))

    def load_state(self, path: str) -> cf.Future[None]:
        """Open the service's client from ``path`` with its optimizer state (the SDK's
        ``create_training_client_from_state_with_optimizer``); any client held so far is
        dropped."""
        def create() -> None:
            self._sdk = _guard(lambda: self.service.client
                               .create_training_client_from_state_with_optimizer(path).result())

        try:
            create()
            return done_future(None)
        except ServiceError as exc:
            return done_future(error=exc)

    def close(self) -> None:
        self._waiter.shutdown(wait=False, cancel_futures=True)
        self._sdk = None
