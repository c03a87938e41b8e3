"""Requests/s and latency of the HTTP server (deploy/python/server.py) per backend, under concurrent clients.

    .venv/bin/python benchmarks/server.py --model_dir output/nano --texts data/dev.txt \
        [--backends paddle onnx_runtime paddle_lite] [--clients 200] [--seconds 30] [--name nano]

For each backend: a fresh server process (FastTokenizer, default batching), /ready awaited, then
scripts/load_test.py: every distinct text answered alone first (the reference), then --clients concurrent clients
for --seconds, every answer compared with its reference. Writes benchmarks/results/<name>_server.json and .md:
requests/s, p50/p99 latency, errors, mismatches and the server's mean batch per backend.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "deploy", "python", "server.py")
LOAD_TEST = os.path.join(ROOT, "scripts", "load_test.py")
READY_WITHIN_S = 600  # model loading (Paddle Lite converts the model first)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, log_path):
    import httpx

    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}): {open(log_path).read()[-800:]}")
        try:
            if httpx.get(url + "/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready within {READY_WITHIN_S} s")


def measure(a, backend, tmp):
    """One backend: start its server, run the load test against it, stop it; the load test's report."""
    port, log_path, out = free_port(), os.path.join(tmp, f"{backend}.log"), os.path.join(tmp, f"{backend}.json")
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, SERVER, "--model_dir", a.model_dir, "--model_prefix", a.model_prefix,
                                 "--backend", backend, "--use_fast", "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
    try:
        wait_ready(url, proc, log_path)
        subprocess.run([sys.executable, LOAD_TEST, "--url", url, "--clients", str(a.clients), "--seconds",
                        str(a.seconds), "--texts", a.texts, "--server_pid", str(proc.pid), "--output", out],
                       cwd=ROOT, capture_output=True, text=True)
        if not os.path.isfile(out):
            raise RuntimeError(f"load_test.py wrote no report: {open(log_path).read()[-800:]}")
        return json.load(open(out))
    finally:
        proc.terminate()
        proc.wait(60)


def row(backend, report):
    load = report["load"]
    keep = ("requests_per_s", "p50_ms", "p99_ms", "answered", "errors", "mismatches", "server_mean_batch")
    return {"backend": backend, **{k: load.get(k) for k in keep}, "server_rss_mib_after": report.get(
        "server_rss_mib_after")}


def markdown(rows, a):
    lines = [f"Server (FastTokenizer, default batching) on {a.model_dir}/{a.model_prefix}: {a.clients} concurrent "
             f"clients for {a.seconds} s, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores", "",
             "| backend | requests/s | p50 ms | p99 ms | answered | errors | mismatches | mean batch | RSS MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | failed: {r['error'][:200]} | | | | | | | |")
            continue
        lines.append(f"| {r['backend']} | {r['requests_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['answered']} | "
                     f"{r['errors']} | {r['mismatches']} | {r['server_mean_batch']} | {r['server_rss_mib_after']} |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_dir", required=True)
    ap.add_argument("--model_prefix", default="infer_model")
    ap.add_argument("--texts", required=True, help="queries: a corpus file or one per line")
    ap.add_argument("--backends", nargs="+", default=["paddle", "onnx_runtime", "paddle_lite"])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--name", default="server")
    ap.add_argument("--out_dir", default=os.path.join(ROOT, "benchmarks", "results"))
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in a.backends:
            try:
                rows.append(row(backend, measure(a, backend, tmp)))
            except RuntimeError as e:
                rows.append({"backend": backend, "error": str(e)})
    os.makedirs(a.out_dir, exist_ok=True)
    prefix = os.path.join(a.out_dir, a.name + "_server")
    with open(prefix + ".json", "w") as f:
        json.dump({"model": os.path.join(a.model_dir, a.model_prefix), "clients": a.clients, "seconds": a.seconds,
                   "rows": rows}, f, indent=2)
    lines = markdown(rows, a)
    with open(prefix + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
