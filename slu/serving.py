"""The HTTP service's machinery (FastAPI + uvicorn) over the one Predictor: request schema and limits, the batcher
that retries a failed batch request by request, bounded queue, rate-limited logs, metrics, API key, probes, the
guarded HTTP protocol (header/body timeouts, connection cap) and uvicorn start-up with workers.
deploy/python/server.py is the command line over it (see its docstring for the endpoints).
"""
import asyncio
import collections
import contextlib
import dataclasses
import hmac
import inspect
import json
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional

from slu import data
from slu.predictor import Predictor

import h11
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

SETTINGS_ENV = "SLU_SERVER_SETTINGS"  # how main hands the settings to uvicorn's worker processes
API_KEY_ENV = "SLU_API_KEY"
OPEN_PATHS = {"/health", "/ready"}  # answered without the API key (probes)
KNOWN_PATHS = {"/predict", "/health", "/ready", "/metrics", "/docs", "/openapi.json"}
MAX_NUMBER_CHARS = 100  # a JSON number longer than this is refused before int()/float() sees it
MAX_HEADER_BYTES = 16384  # request line + headers (h11's limit on an incomplete event)
RETRY_AFTER = {"retry-after": "1"}
CLOSE = {"connection": "close"}  # for answers given before the body was read: do not read the rest
log = logging.getLogger("slu.server")


# ------------------------------------------------------------------------------------------------ settings
@dataclasses.dataclass
class Settings:
    """What the app and the connection protocol need. main() puts it in $SLU_SERVER_SETTINGS, which every
    uvicorn worker reads (app_from_env)."""
    model_dir: str = ""
    model_prefix: str = "infer_model"
    backend: str = "paddle"
    device: str = "cpu"
    cpu_num_threads: int = 1
    max_length: Optional[int] = None
    use_fast: bool = False
    max_batch_size: int = 32
    batch_wait_ms: float = 5
    max_queue: int = 1024
    max_chars: int = 512
    max_body_bytes: int = 1 << 20
    body_timeout: float = 30
    header_timeout: float = 10
    keep_alive_timeout: int = 5
    max_connections: int = 1000
    log_lines_per_s: int = 10
    workers: int = 1
    # the model's deploy_config.json as settings_from_args read it; not passed to worker processes (its CRF scores
    # can approach the 128 KiB an environment string may hold), each of which reads the file once itself
    manifest: Optional[dict] = None

    def to_env(self):
        os.environ[SETTINGS_ENV] = json.dumps({**dataclasses.asdict(self), "manifest": None})

    @classmethod
    def from_env(cls):
        return cls(**json.loads(os.environ[SETTINGS_ENV])) if SETTINGS_ENV in os.environ else cls()


# ------------------------------------------------------------------------------------------------ requests
MAX_CONTEXT_TURNS = 16  # earlier turns a request may send with a query (a context model uses its last 1-2)


class OneText(BaseModel):
    model_config = ConfigDict(strict=True)  # no coercion: 12 is not "12"
    text: str = Field(description="one query (at most --max_chars characters)",
                      examples=["来一首周华健的花心"])
    context: List[str] = Field([], max_length=MAX_CONTEXT_TURNS,
                               description="earlier turns of the dialogue, oldest first (used by a model trained "
                                           "with context, ignored otherwise)", examples=[["导航到古田"]])


class ManyTexts(BaseModel):
    model_config = ConfigDict(strict=True)
    texts: List[str] = Field(min_length=1, description="queries answered in order (at most --max_batch_size)",
                             examples=[["暂停", "导航到北京西站"]])
    contexts: Optional[List[List[str]]] = Field(None, description="one list of earlier turns per text, oldest first")


class Slot(BaseModel):
    slot: str
    entity: str
    pos: List[int]


class Prediction(BaseModel):
    query: str
    intent: str
    confidence: float
    slot: List[Slot]
    truncated: Optional[bool] = Field(None, description="present (true) when the text was cut to --max_seq_length")


class PredictAnswer(BaseModel):
    result: Optional[Prediction] = Field(None, description='for {"text": ...}')
    results: Optional[List[Prediction]] = Field(None, description='for {"texts": [...]}, in order')


class ErrorAnswer(BaseModel):
    error: str = Field(description="one line naming the field or limit")


class RequestError(Exception):
    """A request the server refuses: HTTP status, a one-line message naming the field, extra headers."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class PredictionFailed(Exception):
    """The model raised on this request's texts, alone."""


def bounded_number(literal):
    if len(literal) > MAX_NUMBER_CHARS:
        raise RequestError(400, f"request body has a number of {len(literal)} characters; the limit is "
                                f"{MAX_NUMBER_CHARS}")
    return float(literal) if any(c in literal for c in ".eE") else int(literal)


def refuse_constant(name):
    raise RequestError(400, f"request body is not JSON: {name} is not a JSON value")


def parse_json(raw):
    """The JSON value of a request body; RequestError for bytes that are not UTF-8 JSON of sane depth and numbers."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(422, f"request body is not valid UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        return json.loads(text, parse_int=bounded_number, parse_float=bounded_number, parse_constant=refuse_constant)
    except json.JSONDecodeError as e:
        raise RequestError(400, f"request body is not JSON: {e}") from None
    except RecursionError:
        raise RequestError(400, "request body is not JSON this server accepts: nested too deeply") from None


def schema_error(error):
    """The one-line message of a Pydantic error on the request, e.g. '"texts[2]" must be a string, not int'."""
    field = error["loc"][0] + "".join(f"[{k}]" for k in error["loc"][1:])
    got = type(error["input"]).__name__
    if error["type"] == "too_short":
        return f'"{field}" is empty'
    if error["type"] == "list_type":
        return f'"{field}" must be a list of strings, not {got}'
    if error["type"] == "string_type":
        return f'"{field}" must be a string, not {got}'
    if error["type"] == "too_long":
        return f'"{field}" has {len(error["input"])} items; the limit is {MAX_CONTEXT_TURNS}'
    return f'"{field}": {error["msg"]}'


def texts_of(body, settings):
    """(texts, contexts, single) of a parsed request body, every text and context turn checked; RequestError naming
    the field otherwise."""
    if not isinstance(body, dict):
        raise RequestError(422, 'the JSON body must be an object with a "text" or "texts" field')
    if "text" in body:
        schema, fields = OneText, ("text", "context")
    elif "texts" in body:
        schema, fields = ManyTexts, ("texts", "contexts")
    else:
        raise RequestError(422, 'missing field: "text" (one query) or "texts" (a list)')
    try:
        request = schema.model_validate({f: body[f] for f in fields if f in body})
    except ValidationError as e:
        raise RequestError(422, schema_error(e.errors()[0])) from None
    single = schema is OneText
    texts = [request.text] if single else request.texts
    contexts = [request.context] if single else request.contexts or [[] for _ in texts]
    if len(texts) > settings.max_batch_size:
        raise RequestError(413, f'"texts" has {len(texts)} items; the limit is {settings.max_batch_size}')
    if len(contexts) != len(texts):
        raise RequestError(422, f'"contexts" has {len(contexts)} items for {len(texts)} texts')
    for k, (text, context) in enumerate(zip(texts, contexts)):
        check_one_text(text, "text" if single else f"texts[{k}]", settings.max_chars)
        if len(context) > MAX_CONTEXT_TURNS:
            raise RequestError(422, f'"contexts[{k}]" has {len(context)} items; the limit is {MAX_CONTEXT_TURNS}')
        for j, turn in enumerate(context):
            check_one_text(turn, f"context[{j}]" if single else f"contexts[{k}][{j}]", settings.max_chars)
    return texts, contexts, single


def check_one_text(text, name, max_chars):
    if not text.strip():
        raise RequestError(422, f'"{name}" is empty')
    if len(text) > max_chars:
        raise RequestError(413, f'"{name}" has {len(text)} characters; the limit is {max_chars}')
    try:
        data.check_text(text, f'"{name}"')
    except ValueError as e:
        raise RequestError(422, str(e)) from None


def check_content_type(value):
    """JSON bodies only (415 otherwise): a browser sends text/plain, form and multipart bodies cross-origin without
    asking first (no CORS preflight), so parsing those as JSON would let any web page post queries. A request
    without a Content-Type (curl --data-binary, scripts) is read as JSON."""
    if value is None:
        return
    media = value.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise RequestError(415, f"Content-Type {printable(value, 80)} is not application/json", CLOSE)


async def read_body(request, settings):
    """The request body, refused (413) as soon as it is known to be too large: from Content-Length before reading,
    or while counting a chunked body; 408 when it does not arrive within --body_timeout."""
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > settings.max_body_bytes:  # h11 has checked it is a number
        raise RequestError(413, f"request body has {declared} bytes; the limit is {settings.max_body_bytes}", CLOSE)
    try:
        return await asyncio.wait_for(read_stream(request, settings.max_body_bytes), settings.body_timeout)
    except asyncio.TimeoutError:
        raise RequestError(408, f"request body not received within {settings.body_timeout:g} s", CLOSE) from None


async def read_stream(request, max_bytes):
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise RequestError(413, f"request body is over the limit of {max_bytes} bytes", CLOSE)
            chunks.append(chunk)
    except ClientDisconnect:
        raise RequestError(400, "client disconnected before the body was complete", CLOSE) from None
    return b"".join(chunks)


# ------------------------------------------------------------------------------------------------ batching
class Overloaded(Exception):
    pass


class Batcher:
    """Runs the texts of concurrent requests through `predict` in shared calls: at most max_batch_size texts per
    call, waiting at most batch_wait_ms for more; at most max_queue requests wait (Overloaded beyond). A call that
    raises is retried request by request, so a text that breaks the model fails only its own request."""

    def __init__(self, predict, settings, metrics):
        self.predict, self.metrics = predict, metrics
        self.max_batch_size, self.max_queue = settings.max_batch_size, settings.max_queue
        self.wait_s = settings.batch_wait_ms / 1000
        self.waiting = collections.deque()  # (texts, contexts, future) in arrival order
        self.waiting_texts = 0
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="slu-model")  # one runtime call at a time
        self.arrived = self.task = None

    async def submit(self, texts, contexts=None):
        if len(self.waiting) >= self.max_queue:
            raise Overloaded()
        self._ensure_running()
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((texts, contexts or [[] for _ in texts], future))
        self.waiting_texts += len(texts)
        self.metrics.queue.set(len(self.waiting))
        self.arrived.set()
        return await future

    def _ensure_running(self):
        if self.task is None:
            self.arrived = asyncio.Event()
            self.task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self):
        while True:
            await self._wait_for_batch()
            batch = self._take_batch()
            if batch:
                await self._run(batch)

    async def _wait_for_batch(self):
        """Until a request waits, then until max_batch_size texts wait or batch_wait_ms has passed."""
        while not self.waiting:
            self.arrived.clear()
            await self.arrived.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while self.waiting_texts < self.max_batch_size and loop.time() < deadline:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), deadline - loop.time())
            except asyncio.TimeoutError:
                break

    def _take_batch(self):
        """Requests from the front of the queue whose texts fit in one call."""
        batch, size = [], 0
        while self.waiting and size + len(self.waiting[0][0]) <= self.max_batch_size:
            texts, contexts, future = self.waiting.popleft()
            self.waiting_texts -= len(texts)
            if not future.done():  # done: cancelled with its request
                batch.append((texts, contexts, future))
                size += len(texts)
        self.metrics.queue.set(len(self.waiting))
        return batch

    async def _run(self, batch):
        texts = [t for request_texts, _, _ in batch for t in request_texts]
        contexts = [c for _, request_contexts, _ in batch for c in request_contexts]
        try:
            results = await self._call(texts, contexts)
        except Exception as error:
            if len(batch) == 1:
                return _settle(batch[0][2], exception=PredictionFailed(f"{type(error).__name__}: {error}"))
            self.metrics.batch_failures.inc()
            for request in batch:
                await self._run([request])
            return
        start = 0
        for request_texts, _, future in batch:
            _settle(future, result=results[start:start + len(request_texts)])
            start += len(request_texts)

    async def _call(self, texts, contexts):
        self.metrics.batch_size.observe(len(texts))
        results = await asyncio.get_running_loop().run_in_executor(self.executor, self.predict, texts, contexts)
        if len(results) != len(texts):
            raise RuntimeError(f"the model answered {len(results)} of {len(texts)} texts")
        return results


def _settle(future, result=None, exception=None):
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)


# ------------------------------------------------------------------------------------------------ logs, metrics
class RateLimit(logging.Filter):
    """At most `per_second` records a second; the next record let through says how many were dropped. A record's
    traceback is cut to its last line and line breaks are escaped, so one bad request is one log line."""

    def __init__(self, per_second, clock=time.monotonic):
        super().__init__()
        self.per_second, self.clock = per_second, clock
        self.second, self.count, self.dropped = None, 0, 0

    def filter(self, record):
        now = int(self.clock())
        if now != self.second:
            self.second, self.count = now, 0
        self.count += 1
        if self.count > self.per_second:
            self.dropped += 1
            return False
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message = f"{message.strip()}: {type(error).__name__}: {error}"
            record.exc_info = record.exc_text = None
        if self.dropped:
            message = f"{message} ({self.dropped} log lines dropped before this one)"
            self.dropped = 0
        record.msg, record.args = message.replace("\r", "\\r").replace("\n", "\\n"), ()
        return True


def limit_logs(per_second):
    """One shared RateLimit on the server's, uvicorn's and asyncio's loggers (replacing an earlier one)."""
    limit = RateLimit(per_second)
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    for name in ("slu.server", "uvicorn.error", "asyncio"):
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RateLimit)]:
            logger.removeFilter(old)
        logger.addFilter(limit)
    return limit


class Metrics:
    """The Prometheus metrics of one app. With $PROMETHEUS_MULTIPROC_DIR set (main sets it for --workers > 1) the
    values live in files there and /metrics sums every worker's."""

    def __init__(self):
        # imported here, not at the top: prometheus_client reads $PROMETHEUS_MULTIPROC_DIR when first imported
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series: they double the output and say nothing here
        self.registry = CollectorRegistry()  # per app: tests build several apps in one process
        r = self.registry
        self.requests = Counter("slu_requests", "HTTP requests answered, by endpoint and status",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("slu_request_seconds", "time to answer a request, by endpoint", ["endpoint"],
                                 registry=r)
        self.batch_size = Histogram("slu_batch_size", "texts per runtime call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=r)
        self.batch_failures = Counter("slu_batch_failures", "runtime calls that raised and were retried request by "
                                                            "request", registry=r)
        self.errors = Counter("slu_errors", "requests answered 500: the model raised on their texts (prediction) "
                                            "or the server failed (internal)", ["kind"], registry=r)
        self.queue = Gauge("slu_queue_requests", "requests waiting for the model", registry=r,
                           multiprocess_mode="livesum")

    def exposition(self):
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)


# ------------------------------------------------------------------------------------------------ the app
def printable(text, limit=200):
    """A client-chosen string (a path) as one log-safe line."""
    return text.encode("unicode_escape").decode("ascii")[:limit]


def json_answer(status, content, headers=None):
    return JSONResponse(status_code=status, content=content, headers=headers)


class Guard:
    """The outermost ASGI layer: the API key, request metrics, and any error nothing else caught -> JSON 500 and
    one log line (uvicorn would log a traceback per request)."""

    def __init__(self, app, metrics, api_key):
        self.app, self.metrics, self.api_key = app, metrics, api_key
        self.state = app.state  # the batcher and metrics, for tests

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        endpoint = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
        started, answered = time.perf_counter(), []  # answered: the status, once the response has started

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                answered.append(message["status"])
            await send(message)

        try:
            scope["slu.authorized"] = self._key_given(scope)
            if scope["slu.authorized"] or scope["path"] in OPEN_PATHS:
                await self.app(scope, receive, send_and_note)
            else:
                log.warning(f"401 {scope['method']} {printable(scope['path'])}: missing or wrong API key")
                await json_answer(401, {"error": "missing or wrong X-API-Key header"}, CLOSE)(scope, receive,
                                                                                              send_and_note)
        except Exception as error:
            self.metrics.errors.labels("internal").inc()
            log.error(f"500 {scope['method']} {printable(scope['path'])}: {type(error).__name__}: {error}")
            if not answered:  # else FastAPI's handler has answered, or the response was under way
                await json_answer(500, {"error": "internal server error"})(scope, receive, send_and_note)
        finally:
            self.metrics.requests.labels(endpoint, str(answered[0] if answered else 500)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)

    def _key_given(self, scope):
        """No API key is set, or the request carries it."""
        if not self.api_key:
            return True
        headers = dict(scope["headers"])
        given = headers.get(b"x-api-key") or headers.get(b"authorization", b"").removeprefix(b"Bearer ")
        return hmac.compare_digest(given, self.api_key.encode())


def create_app(predict=None, info=None, settings=None, api_key=None, load=None, on_load_error=None):
    """The ASGI app. `predict(texts, contexts) -> [result dict]`, or `load() -> predict` run in a thread at start-up
    (/ready and /predict answer 503 until it returns; `on_load_error(error)` if it raises). Tests pass a stub."""
    settings = settings or Settings()
    limit_logs(settings.log_lines_per_s)
    metrics = Metrics()
    batcher = Batcher(predict, settings, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_):
        loading = asyncio.get_running_loop().create_task(load_model()) if load is not None else None
        yield
        for task in (loading, batcher.task):
            if task is not None:
                task.cancel()
        batcher.executor.shutdown(wait=False)

    async def load_model():
        try:
            with python_signal_handlers_kept():
                batcher.predict = await in_daemon_thread(load)
        except Exception as error:
            if on_load_error is None:
                log.error(f"loading the model failed: {type(error).__name__}: {error}")
            else:
                on_load_error(error)

    app = FastAPI(title="ERNIE 3.0 Tiny SLU", lifespan=lifespan)
    app.state.batcher, app.state.metrics = batcher, metrics
    add_error_answers(app)
    add_probes(app, batcher, metrics, info or {})
    add_predict(app, batcher, metrics, settings)
    return Guard(app, metrics, api_key)


@contextlib.contextmanager
def python_signal_handlers_kept():
    """Importing paddle (the loading thread does, unless --use_fast) installs Paddle's own C handlers for SIGTERM and
    SIGINT, which print a stack and kill the process (-15) instead of letting uvicorn shut down gracefully: the
    Python handlers that were there (uvicorn's) are put back afterwards, from the main thread."""
    signals = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.getsignal(s) for s in signals}
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for s, handler in before.items():
                if handler is not None:
                    signal.signal(s, handler)


async def in_daemon_thread(function):
    """function() in a daemon thread: a process asked to stop (SIGTERM) exits without waiting for it, as it must
    for a model load that takes long (ThreadPoolExecutor's threads are joined at exit)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def run():
        try:
            result, error = function(), None
        except BaseException as e:  # handed to the awaiting coroutine
            result, error = None, e
        loop.call_soon_threadsafe(lambda: future.done() or (future.set_exception(error) if error
                                                             else future.set_result(result)))

    threading.Thread(target=run, name="slu-load", daemon=True).start()
    return await future


def add_error_answers(app):
    """{"error": message} for refusals, FastAPI's own 404/405, and anything unexpected."""
    @app.exception_handler(RequestError)
    async def refused(request, error):
        log.warning(f"{error.status} {request.method} {printable(request.url.path)}: {error.message}")
        return json_answer(error.status, {"error": error.message}, {**error.headers})

    @app.exception_handler(HTTPException)
    async def http_error(request, error):
        log.warning(f"{error.status_code} {request.method} {printable(request.url.path)}: {error.detail}")
        return json_answer(error.status_code, {"error": str(error.detail)}, error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request, error):  # the answer; FastAPI re-raises the error and Guard logs it once
        return json_answer(500, {"error": "internal server error"})


def add_probes(app, batcher, metrics, info):
    @app.get("/health")
    async def health(request: Request):
        answer = {"status": "ok", "ready": batcher.predict is not None}
        if request.scope.get("slu.authorized"):  # the process and model details only with the API key (if any)
            answer.update(pid=os.getpid(), **info)
        return answer

    @app.get("/ready", responses={503: {"model": ErrorAnswer}})
    async def ready():
        if batcher.predict is None:
            raise RequestError(503, "the model is still loading", RETRY_AFTER)
        return {"status": "ready"}

    @app.get("/metrics")
    async def prometheus_metrics():
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def add_predict(app, batcher, metrics, settings):
    body_schema = {"anyOf": [OneText.model_json_schema(), ManyTexts.model_json_schema()]}
    request_body = {"required": True, "content": {"application/json": {"schema": body_schema}}}
    errors = {status: {"model": ErrorAnswer} for status in (400, 401, 408, 413, 415, 422, 500, 503)}

    # the body is read and parsed here, with limits; the schema is given to OpenAPI by hand
    @app.post("/predict", response_model=None, responses={200: {"model": PredictAnswer}, **errors},
              openapi_extra={"requestBody": request_body})
    async def predict(request: Request):
        check_content_type(request.headers.get("content-type"))
        texts, contexts, single = texts_of(parse_json(await read_body(request, settings)), settings)
        if batcher.predict is None:
            raise RequestError(503, "the model is still loading", RETRY_AFTER)
        try:
            results = await batcher.submit(texts, contexts)
        except Overloaded:
            raise RequestError(503, f"overloaded: {settings.max_queue} requests are waiting for the model",
                               RETRY_AFTER) from None
        except PredictionFailed as error:
            metrics.errors.labels("prediction").inc()
            log.error(f"500 POST /predict: prediction failed: {error}")
            return json_answer(500, {"error": f"prediction failed: {error}"})
        results = [{"query": t, **r} for t, r in zip(texts, results)]
        return json_answer(200, {"result": results[0]} if single else {"results": results})  # skips FastAPI's encoder


# ------------------------------------------------------------------------------------------------ connections
class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol plus what it lacks against idle and slow clients (0.55 as 0.16: no header timeout, and
    h11's size limit holds only for a head that arrives in pieces): a request's head must arrive whole within
    --header_timeout of connecting (or of its first byte, after a keep-alive wait) and within MAX_HEADER_BYTES;
    past --max_connections a new connection closes the longest-idle one, first among those that
    never sent a request, then among those kept alive after an answer (or itself, when every other one is busy).
    uvicorn's own limit_concurrency counts idle sockets too: 20,000 of them would get every real client a 503."""

    limits = None  # (header_timeout, max_connections), read from $SLU_SERVER_SETTINGS once per process

    def __init__(self, config, server_state, **kwargs):
        super().__init__(config, server_state, **kwargs)
        if GuardedH11.limits is None:
            settings = Settings.from_env()
            GuardedH11.limits = settings.header_timeout, settings.max_connections
        self.header_timeout, self.max_connections = GuardedH11.limits
        if getattr(config, "h11_max_incomplete_event_size", None) != MAX_HEADER_BYTES:  # uvicorn 0.16: no setting
            self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        if not hasattr(server_state, "slu_fresh"):
            server_state.slu_fresh = collections.OrderedDict()  # idle, no request yet; longest-idle first
            server_state.slu_kept = collections.OrderedDict()  # idle after an answer; longest-idle first
            server_state.slu_closing = set()  # closed by us, not yet lost: no longer counted against the cap
        self.fresh, self.kept, self.closing = server_state.slu_fresh, server_state.slu_kept, server_state.slu_closing
        self.header_timer = None

    def connection_made(self, transport):
        super().connection_made(transport)
        self._note_state()
        if len(self.connections) - len(self.closing) > self.max_connections:
            victim = self._longest_idle_other()
            (victim or self)._close()

    def data_received(self, data):
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            return self._refuse_head()
        super().data_received(data)
        self._note_state()

    def on_response_complete(self):
        super().on_response_complete()
        self._note_state()

    def connection_lost(self, exc):
        self._forget()
        self.closing.discard(self)
        super().connection_lost(exc)

    def _head_too_large(self, data):
        """h11 limits only a head that arrives in pieces; one that arrives whole is counted here."""
        pending = self.conn.trailing_data[0] + data
        end = pending.find(b"\r\n\r\n")
        return (end if end >= 0 else len(pending)) > MAX_HEADER_BYTES

    def _refuse_head(self):
        body = json.dumps({"error": f"request line and headers are over {MAX_HEADER_BYTES} bytes"}).encode()
        log.warning(f"431 from {self.client[0] if self.client else '?'}: request headers over {MAX_HEADER_BYTES} bytes")
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                             b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        self._close()

    def _note_state(self):
        """File the connection as busy (answering), fresh or kept idle, and arm the header deadline when idle."""
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return self._forget()
        idle, other = (self.fresh, self.kept) if self.cycle is None else (self.kept, self.fresh)
        other.pop(self, None)
        idle.setdefault(self, None)
        if self.timeout_keep_alive_task is not None:  # waiting between requests: uvicorn's keep-alive timer
            self._cancel_header_timer()
        elif self.header_timer is None:
            self.header_timer = self.loop.call_later(self.header_timeout, self._header_timeout)

    def _longest_idle_other(self):
        for idle in (self.fresh, self.kept):
            for conn in idle:
                if conn is not self and not conn.transport.is_closing():
                    return conn
        return None

    def _header_timeout(self):
        self.header_timer = None
        if self in self.fresh or self in self.kept:
            self._close()

    def _forget(self):
        self.fresh.pop(self, None)
        self.kept.pop(self, None)
        self._cancel_header_timer()

    def _cancel_header_timer(self):
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _close(self):
        self._forget()
        self.closing.add(self)
        self.transport.close()


# ------------------------------------------------------------------------------------------------ start-up
def load_predict(settings):
    """The predict function of the model the settings name (runs in the model thread)."""
    predictor = Predictor.from_dir(settings.model_dir, model_prefix=settings.model_prefix, backend=settings.backend,
                                   device=settings.device, cpu_num_threads=settings.cpu_num_threads,
                                   max_length=settings.max_length, batch_size=settings.max_batch_size,
                                   use_fast=settings.use_fast, config=settings.manifest)
    return lambda texts, contexts: predictor.predict(texts, contexts=contexts)


def exit_on_load_error(settings):
    def exit_now(error):
        known = isinstance(error, (FileNotFoundError, ValueError))
        reason = str(error) if known else f"{type(error).__name__}: {error}"
        print(f"server.py: error: {reason}", file=sys.stderr, flush=True)
        if settings.workers > 1:
            os.kill(os.getppid(), signal.SIGTERM)  # the uvicorn supervisor: stop the other workers too
        os._exit(1)

    return exit_now


def app_from_env():
    """The app of one uvicorn worker ("slu.serving:app_from_env", factory=True): settings from $SLU_SERVER_SETTINGS,
    the API key from $SLU_API_KEY; the model loads in the background."""
    settings = Settings.from_env()
    info = {"backend": settings.backend, "model": os.path.join(settings.model_dir, settings.model_prefix),
            "max_length": settings.max_length, "max_batch_size": settings.max_batch_size}
    return create_app(info=info, settings=settings, api_key=os.environ.get(API_KEY_ENV) or None,
                      load=lambda: load_predict(settings), on_load_error=exit_on_load_error(settings))


def serve(settings, host, port):
    settings.to_env()
    workers = settings.workers
    config = uvicorn.Config("slu.serving:app_from_env" if workers > 1 else app_from_env, factory=True, host=host,
                            port=port, workers=workers, http=GuardedH11, log_level="warning",
                            timeout_keep_alive=settings.keep_alive_timeout, backlog=backlog(settings),
                            **h11_head_limit())
    stop_cleanly_on_signals()
    if workers == 1:
        server = uvicorn.Server(config)
        server.run()
        return 0 if server.started else 1
    with metrics_dir():
        supervisor = supervisor_of(config)
        supervisor.run()
    return 1 if any(p.exitcode == 1 for p in supervisor.processes) else 0


def stop_cleanly_on_signals():
    """SIGTERM and SIGINT end the process with status 0 once uvicorn has shut down (drained the requests in flight):
    uvicorn 0.29+ re-raises the signal it caught to the handler that was there before it, which by default kills
    the process with that signal (status -15)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))


def supervisor_of(config):
    """uvicorn's worker supervisor: it makes the workers itself since 0.30; 0.16 (the legacy environment's,
    FastDeploy's pin) is given their target."""
    sockets = [config.bind_socket()]
    if "target" in inspect.signature(Multiprocess).parameters:
        return Multiprocess(config, target=uvicorn.Server(config).run, sockets=sockets)
    return Multiprocess(config, sockets=sockets)


def h11_head_limit():
    """uvicorn (0.55 here) sets h11's limit on an incomplete request head itself; 0.16 has no setting (GuardedH11 then
    makes its h11 connection with the limit)."""
    if "h11_max_incomplete_event_size" in inspect.signature(uvicorn.Config).parameters:
        return {"h11_max_incomplete_event_size": MAX_HEADER_BYTES}
    return {}


def backlog(settings):
    return min(2048, settings.max_connections)


def fds_needed(settings):
    """Open connections, plus what one event-loop turn may accept before the excess is closed, plus files."""
    return settings.max_connections + backlog(settings) + 64


def raise_fd_limit(settings):
    """Raise this process's open-file limit to what --max_connections needs, or refuse it (data.UsageError)."""
    need = fds_needed(settings)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise data.UsageError(f"--max_connections {settings.max_connections} needs {need} open files; this "
                                  f"process may open {hard} (ulimit -Hn): lower --max_connections")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


@contextlib.contextmanager
def metrics_dir():
    """$PROMETHEUS_MULTIPROC_DIR for the workers (a fresh temporary one unless set)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    path = tempfile.mkdtemp(prefix="slu_metrics_")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield
    finally:
        shutil.rmtree(path, ignore_errors=True)
