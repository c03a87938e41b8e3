"""HTTP service over the SLU predictor (FastAPI + uvicorn). Backend and model directory are chosen at start:

    python deploy/python/server.py --model_dir output/nano --backend onnx_runtime --use_fast --port 8189

    POST /predict  {"text": "来一首周华健的花心"}           -> {"result": {...}}
    POST /predict  {"texts": ["暂停", "导航到北京西站"]}     -> {"results": [{...}, {...}]}
    GET  /health   live: the process answers               -> {"status": "ok", "backend": ..., "model": ...}
    GET  /ready    the model is loaded (503 until then)    -> {"status": "ready"}
    GET  /metrics  Prometheus text format

Requests that arrive together are batched into one runtime call (up to --max_batch_size texts, waiting at most
--batch_wait_ms); a call that fails is retried request by request, so a text that breaks the model fails only
its own request. Every refusal is {"error": message} with a 4xx (5xx when the server cannot answer), one log line
at most (--log_lines_per_s). Limits: body size, characters per text, waiting requests, header and body
timeouts, connections (deploy/README.md). With $SLU_API_KEY set, every endpoint but /health and /ready needs
the header X-API-Key (or Authorization: Bearer) with that key.
"""
import argparse
import dataclasses
import os
import sys

from slu import data, envs, manifest  # first: zlib work-around before paddle
from slu.backends import BACKENDS
from slu.serving import Settings, raise_fd_limit, serve


def parse_args(argv=None):
    d = Settings()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_dir", required=True)
    ap.add_argument("--model_prefix", default=d.model_prefix)
    ap.add_argument("--backend", default=d.backend, choices=list(BACKENDS))
    ap.add_argument("--device", default=d.device, choices=["cpu", "gpu"])
    ap.add_argument("--cpu_num_threads", type=int, default=d.cpu_num_threads)
    ap.add_argument("--max_seq_length", dest="max_length", type=int, default=None, help="default: deploy_config.json's max_seq_length")
    ap.add_argument("--use_fast", action="store_true", help="tokenize with FastTokenizer (recommended)")
    ap.add_argument("--max_batch_size", type=int, default=d.max_batch_size,
                    help="texts per runtime call and per request")
    ap.add_argument("--batch_wait_ms", type=float, default=d.batch_wait_ms)
    ap.add_argument("--max_queue", type=int, default=d.max_queue, help="requests waiting for the model; 503 beyond")
    ap.add_argument("--max_chars", type=int, default=d.max_chars, help="characters per text; 413 beyond")
    ap.add_argument("--max_body_bytes", type=int, default=d.max_body_bytes, help="request body size; 413 beyond")
    ap.add_argument("--body_timeout", type=float, default=d.body_timeout, help="seconds to receive a body; 408 after")
    ap.add_argument("--header_timeout", type=float, default=d.header_timeout,
                    help="seconds to receive a request's headers; the connection is closed after")
    ap.add_argument("--keep_alive_timeout", type=int, default=d.keep_alive_timeout,
                    help="seconds an idle keep-alive connection stays open")
    ap.add_argument("--max_connections", type=int, default=d.max_connections,
                    help="open connections per worker; beyond, the longest-idle one is closed")
    ap.add_argument("--log_lines_per_s", type=int, default=d.log_lines_per_s,
                    help="log lines a second at most (bad requests, errors); the rest are counted")
    ap.add_argument("--workers", type=int, default=d.workers, help="uvicorn worker processes, one model each")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8189)
    return ap.parse_args(argv)


def check_args(a):
    """One-line refusals of settings that cannot work (data.UsageError)."""
    data.check_at_least_one(a, ("max_batch_size", "max_queue", "max_chars", "max_body_bytes", "max_connections",
                                "workers", "cpu_num_threads", "log_lines_per_s", "keep_alive_timeout"))
    for flag in ("body_timeout", "header_timeout"):
        if not getattr(a, flag) > 0:
            raise data.UsageError(f"--{flag} must be more than 0 seconds, not {getattr(a, flag)}")
    if not a.batch_wait_ms >= 0:
        raise data.UsageError(f"--batch_wait_ms must be at least 0, not {a.batch_wait_ms}")
    if not 1 <= a.port <= 65535:
        raise data.UsageError(f"--port must be between 1 and 65535, not {a.port}")


def settings_from_args(a):
    """Settings after the checks that need no runtime: flags, deploy_config.json, label files against the
    model's output sizes, max length against its position embeddings."""
    check_args(a)
    config = manifest.read(a.model_dir)
    manifest.labels(a.model_dir, config)
    max_length = manifest.max_length(config, a.max_length, os.path.join(a.model_dir, manifest.NAME))
    names = {f.name for f in dataclasses.fields(Settings)}
    settings = Settings(**{**{k: v for k, v in vars(a).items() if k in names}, "max_length": max_length,
                           "manifest": config})
    raise_fd_limit(settings)
    return settings


def main(argv=None):
    a = parse_args(argv)
    if argv is None:
        envs.reexec_for_backend(a.backend)  # FastDeploy and Paddle Lite: the legacy environment
    try:
        settings = settings_from_args(a)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"server.py: error: {e}")
    sys.exit(serve(settings, a.host, a.port))


if __name__ == "__main__":
    main()
