"""HTTP service over the SLU predictor (FastAPI + uvicorn). Backend and model directory are chosen at start:

    python deploy/python/server.py --model_dir output/nano --backend paddle --port 8189

    POST /predict  {"text": "来一首周华健的花心"}           -> {"result": {...}}
    POST /predict  {"texts": ["暂停", "导航到北京西站"]}     -> {"results": [{...}, {...}]}
    GET  /health                                            -> {"status": "ok", "backend": ..., "model": ...}

Requests that arrive together are batched into one runtime call (up to --max_batch_size texts, waiting at
most --batch_wait_ms). Bad input gets a 4xx with {"error": message} and the service keeps serving. A text
longer than --max_length tokens is truncated and its result says "truncated": true.
"""
import argparse
import asyncio
import json
import os
import time

from slu.backends import BACKENDS  # first: zlib work-around before paddle
from slu.predictor import Predictor


class Batcher:
    """Collects texts from concurrent requests and runs them through the predictor in one call."""

    def __init__(self, predict_fn, max_batch_size=32, wait_ms=5):
        self.predict_fn, self.max_batch_size, self.wait = predict_fn, max_batch_size, wait_ms / 1000
        self.queue = None
        self.batches = 0  # runtime calls made (for /health and tests)

    async def start(self):
        self.queue = asyncio.Queue()
        asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, texts):
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, fut))
        return await fut

    async def _loop(self):
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            n = len(items[0][0])
            deadline = time.monotonic() + self.wait
            while n < self.max_batch_size:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                if n + len(item[0]) > self.max_batch_size:
                    await self._run(loop, items)
                    items, n = [], 0
                items.append(item)
                n += len(item[0])
            await self._run(loop, items)

    async def _run(self, loop, items):
        if not items:
            return
        texts = [t for ts, _ in items for t in ts]
        try:
            results = await loop.run_in_executor(None, self.predict_fn, texts)
            self.batches += 1
        except Exception as e:  # the service keeps serving; every waiting request gets the error
            for _, fut in items:
                if not fut.done():
                    fut.set_exception(e)
            return
        k = 0
        for ts, fut in items:
            if not fut.done():
                fut.set_result(results[k:k + len(ts)])
            k += len(ts)


def validate(raw, max_batch_size):
    """(texts, single) from a request body, or raise ValueError((status, message))."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError((400, f"request body is not valid UTF-8 ({e.reason} at byte {e.start})"))
    try:
        body = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError((400, f"request body is not JSON: {e}"))
    if not isinstance(body, dict):
        raise ValueError((422, 'the JSON body must be an object with a "text" or "texts" field'))
    if "text" in body:
        texts, single, field = [body["text"]], True, "text"
    elif "texts" in body:
        texts, single, field = body["texts"], False, "texts"
        if not isinstance(texts, list):
            raise ValueError((422, f'"texts" must be a list of strings, not {type(texts).__name__}'))
        if not texts:
            raise ValueError((422, '"texts" is empty'))
    else:
        raise ValueError((422, 'missing field: "text" (one query) or "texts" (a list)'))
    if len(texts) > max_batch_size:
        raise ValueError((413, f'"texts" has {len(texts)} items; the limit is {max_batch_size}'))
    for k, t in enumerate(texts):
        name = field if single else f"texts[{k}]"
        if not isinstance(t, str):
            raise ValueError((422, f'"{name}" must be a string, not {type(t).__name__}'))
        if not t.strip():
            raise ValueError((422, f'"{name}" is empty'))
    return texts, single


def create_app(predict_fn, info, max_batch_size=32, wait_ms=5):
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI(title="ERNIE 3.0 Tiny SLU")
    batcher = Batcher(predict_fn, max_batch_size, wait_ms)
    app.state.batcher = batcher

    @app.on_event("startup")
    async def startup():
        await batcher.start()

    @app.get("/health")
    async def health():
        return {"status": "ok", **info, "batches": batcher.batches}

    @app.post("/predict")
    async def predict(request: Request):
        try:
            texts, single = validate(await request.body(), max_batch_size)
        except ValueError as e:
            status, message = e.args[0]
            return JSONResponse(status_code=status, content={"error": message})
        try:
            results = await batcher.submit(texts)
        except Exception as e:
            return JSONResponse(status_code=500, content={"error": f"prediction failed: {e}"})
        results = [{"query": t, **r} for t, r in zip(texts, results)]
        return {"result": results[0]} if single else {"results": results}

    return app


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_dir", required=True)
    ap.add_argument("--model_prefix", default="infer_model")
    ap.add_argument("--backend", default="paddle", choices=list(BACKENDS))
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--cpu_num_threads", type=int, default=1)
    ap.add_argument("--max_length", type=int, default=None, help="default: deploy_config.json's max_seq_length")
    ap.add_argument("--max_batch_size", type=int, default=32)
    ap.add_argument("--batch_wait_ms", type=float, default=5)
    ap.add_argument("--use_fast", action="store_true")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8189)
    a = ap.parse_args(argv)
    try:
        predictor = Predictor.from_dir(a.model_dir, a.model_prefix, a.backend, a.device, a.cpu_num_threads,
                                       a.max_length, a.max_batch_size, a.use_fast)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"server.py: error: {e}")
    info = {"backend": a.backend, "model": os.path.join(a.model_dir, a.model_prefix), "max_length": predictor.max_length,
            "max_batch_size": a.max_batch_size}
    import uvicorn

    uvicorn.run(create_app(predictor.predict, info, a.max_batch_size, a.batch_wait_ms), host=a.host, port=a.port,
                log_level="warning")


if __name__ == "__main__":
    main()
