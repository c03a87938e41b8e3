"""Load and abuse test for a running deploy/python/server.py (loopback only).

    python scripts/load_test.py --url http://127.0.0.1:8189 --clients 200 --seconds 30 \
        --texts data/sample/dev.txt --output load.json

First every distinct text is sent alone, one at a time: that is its reference answer. Then --clients concurrent
clients (split over --processes) send one text per request for --seconds; every answer must equal the reference
(intent and slots exactly, confidence within 1e-4). The JSON report holds requests/s, p50/p99 latency, errors by
kind, mismatches, and the server's batches from /metrics.

    --idle_sockets 20000   while the clients run, open that many connections that never send a byte and hold
                           them; report how many the server closed (they must not stop the clients: errors 0)
    --big_body_bytes 10000000   before the run, offer a body of that size (Content-Length, then chunked) and
                           report the answer and how many body bytes had been sent when it came
    --server_pid PID       report the server's resident memory before and after
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import re
import resource
import select
import socket
import statistics
import sys
import time
import urllib.parse

import aiohttp
import httpx

from slu import data

CONFIDENCE_TOLERANCE = 1e-4
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8189")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--processes", type=int, default=1, help="client processes (the clients are split over them)")
    ap.add_argument("--texts", default=os.path.join(ROOT, "data", "sample", "dev.txt"),
                    help="queries, one per line, or a corpus file")
    ap.add_argument("--api_key", default=os.environ.get("SLU_API_KEY"), help="default: $SLU_API_KEY")
    ap.add_argument("--idle_sockets", type=int, default=0)
    ap.add_argument("--big_body_bytes", type=int, default=0)
    ap.add_argument("--server_pid", type=int)
    ap.add_argument("--output", default="load_test.json")
    a = ap.parse_args(argv)
    if urllib.parse.urlsplit(a.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        ap.error("--url must be a loopback address: this script only loads a server on this machine")
    return a


def headers_for(api_key):
    return {"X-API-Key": api_key} if api_key else {}


# ------------------------------------------------------------------------------------------------ load
def reference_answers(url, texts, api_key):
    with httpx.Client(timeout=60, headers=headers_for(api_key)) as client:
        answers = {}
        for text in texts:
            r = client.post(url + "/predict", json={"text": text})
            r.raise_for_status()
            answers[text] = r.json()["result"]
        return answers


def same_answer(got, want):
    return (got["query"], got["intent"], got["slot"], got.get("truncated")) == \
           (want["query"], want["intent"], want["slot"], want.get("truncated")) and \
        abs(got["confidence"] - want["confidence"]) <= CONFIDENCE_TOLERANCE


async def one_client(session, url, texts, reference, first, stride, end, tally):
    """Requests until `end`, at least one (a slow start of the client processes must not leave a run empty)."""
    k = first
    while k == first or time.monotonic() < end:
        text = texts[k % len(texts)]
        k += stride
        started = time.perf_counter()
        try:
            async with session.post(url + "/predict", json={"text": text}) as r:
                status, body = r.status, await r.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            count(tally["errors"], f"{type(e).__name__}: {str(e)[:80]}")
            continue
        if status != 200:
            count(tally["errors"], f"status {status}")
            continue
        tally["latencies"].append(time.perf_counter() - started)
        if not same_answer(json.loads(body)["result"], reference[text]):
            tally["mismatches"] += 1


def count(counter, key):
    counter[key] = counter.get(key, 0) + 1


def run_clients(job):
    """One process's share of the clients (aiohttp: httpx's async client spends ~9 ms of CPU a request with 50
    connections, which would measure the client): latencies, errors, mismatches."""
    url, texts, reference, api_key, client_ids, stride, end = job
    tally = {"latencies": [], "errors": {}, "mismatches": 0, "started": time.monotonic()}

    async def run():
        connector = aiohttp.TCPConnector(limit=len(client_ids))
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers_for(api_key)) as s:
            await asyncio.gather(*[one_client(s, url, texts, reference, k, stride, end, tally) for k in client_ids])

    asyncio.run(run())
    tally["finished"] = time.monotonic()
    return tally


def run_load(a, texts, reference):
    end = time.monotonic() + a.seconds
    shares = [list(range(p, a.clients, a.processes)) for p in range(a.processes)]
    jobs = [(a.url, texts, reference, a.api_key, ids, a.clients, end) for ids in shares if ids]
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        tallies = pool.map(run_clients, jobs)
    elapsed = max(t["finished"] for t in tallies) - min(t["started"] for t in tallies)
    latencies = sorted(x for t in tallies for x in t["latencies"])
    errors = {}
    for t in tallies:
        for kind, n in t["errors"].items():
            errors[kind] = errors.get(kind, 0) + n
    return {
        "clients": a.clients, "processes": a.processes, "seconds": round(elapsed, 2),
        "answered": len(latencies), "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * percentile(latencies, 50), 2) if latencies else None,
        "p99_ms": round(1000 * percentile(latencies, 99), 2) if latencies else None,
        "mean_ms": round(1000 * statistics.mean(latencies), 2) if latencies else None,
        "errors": sum(errors.values()), "errors_by_kind": errors,
        "mismatches": sum(t["mismatches"] for t in tallies),
    }


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


def server_batches(url, api_key):
    """(runtime calls, texts) so far, from the server's /metrics (summed over workers)."""
    text = httpx.get(url + "/metrics", headers=headers_for(api_key), timeout=60).text

    def value(name):
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    return value("slu_batch_size_count"), value("slu_batch_size_sum")


# ------------------------------------------------------------------------------------------------ abuse
def host_port(url):
    parts = urllib.parse.urlsplit(url)
    return parts.hostname, parts.port or 80


def raise_open_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def hold_idle_sockets(address, count, conn):
    """Child process: open `count` connections that never send a byte; report how many opened, hold them until
    told, then report how many the server has closed."""
    limit = raise_open_file_limit()
    sockets, failed = [], 0
    started = time.monotonic()
    for _ in range(min(count, limit - 64)):
        try:
            sockets.append(socket.create_connection(address, timeout=10))
        except OSError:
            failed += 1
    conn.send({"opened": len(sockets), "failed": failed, "open_seconds": round(time.monotonic() - started, 2)})
    conn.recv()  # the load run is over
    conn.send({"closed_by_server": count_closed(sockets)})
    for s in sockets:
        s.close()


def count_closed(sockets):
    """How many of the sockets the other side has closed (readable, and reading gives end of file or a reset)."""
    by_fd = {s.fileno(): s for s in sockets}
    poller = select.poll()
    for s in sockets:
        poller.register(s, select.POLLIN)
    closed = 0
    for fd, _ in poller.poll(0):
        try:
            closed += by_fd[fd].recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except ConnectionResetError:
            closed += 1
        except BlockingIOError:
            pass
    return closed


def start_idle_sockets(url, total, per_process=9000):
    """Processes that open `total` idle connections (while the load runs)."""
    context = multiprocessing.get_context("spawn")
    holders = []
    for start in range(0, total, per_process):
        parent, child = context.Pipe()
        count = min(per_process, total - start)
        process = context.Process(target=hold_idle_sockets, args=(host_port(url), count, child))
        process.start()
        holders.append((process, parent))
    return holders


def stop_idle_sockets(holders):
    """Once every connection is open: how many opened, and how many of them the server has closed."""
    opened = [parent.recv() for _, parent in holders]
    for _, parent in holders:
        parent.send("stop")
    closed = sum(parent.recv()["closed_by_server"] for _, parent in holders)
    for process, _ in holders:
        process.join(60)
    return {"opened": sum(o["opened"] for o in opened), "failed": sum(o["failed"] for o in opened),
            "open_seconds": max(o["open_seconds"] for o in opened), "closed_by_server": closed}


def offer_big_body(url, size, chunked, api_key):
    """Send headers announcing a `size`-byte body, then the body in 64 KiB pieces until the server answers or
    closes: the status line, the body bytes sent when the answer came (the server reads at most its limit; the
    rest of what was sent sits in socket buffers), seconds."""
    host, port = host_port(url)
    head = ["POST /predict HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    head += ["Transfer-Encoding: chunked"] if chunked else [f"Content-Length: {size}"]
    head += [f"X-API-Key: {api_key}"] if api_key else []
    piece = b"a" * 65536
    sent, started = 0, time.monotonic()
    with socket.create_connection((host, port), timeout=60) as s:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        while sent < size and not select.select([s], [], [], 0)[0]:
            data = piece[:size - sent]
            try:
                s.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            except OSError:
                break
            sent += len(data)
        answer = b""
        while len(answer) < 65536:  # the refusal closes the connection
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    return {"chunked": chunked, "announced_bytes": size, "body_bytes_sent_before_answer": sent,
            "status_line": answer.split(b"\r\n")[0].decode(errors="replace"),
            "answer": answer.split(b"\r\n\r\n", 1)[-1].decode(errors="replace"),
            "seconds": round(time.monotonic() - started, 3)}


def resident_mib(pid):
    if not pid:
        return None
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return round(kib / 1024, 1)


# ------------------------------------------------------------------------------------------------ main
def main(argv=None):
    a = parse_args(argv)
    texts = list(dict.fromkeys(q for _, q in data.read_queries(a.texts)))
    report = {"url": a.url, "texts": len(texts), "server_rss_mib_before": resident_mib(a.server_pid)}
    if a.big_body_bytes:
        report["big_body"] = [offer_big_body(a.url, a.big_body_bytes, chunked, a.api_key) for chunked in (False, True)]
        report["server_rss_mib_after_big_body"] = resident_mib(a.server_pid)
    reference = reference_answers(a.url, texts, a.api_key)
    holders = start_idle_sockets(a.url, a.idle_sockets) if a.idle_sockets else []
    calls_before, texts_before = server_batches(a.url, a.api_key)
    report["load"] = run_load(a, texts, reference)
    calls_after, texts_after = server_batches(a.url, a.api_key)
    calls = calls_after - calls_before
    report["load"]["server_runtime_calls"] = int(calls)
    report["load"]["server_mean_batch"] = round((texts_after - texts_before) / calls, 2) if calls else None
    if holders:
        report["server_rss_mib_with_idle_sockets"] = resident_mib(a.server_pid)
        report["idle_sockets"] = stop_idle_sockets(holders)
    report["server_rss_mib_after"] = resident_mib(a.server_pid)
    with open(a.output, "w") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    print(json.dumps(report, ensure_ascii=False))
    return 0 if report["load"]["errors"] == 0 and report["load"]["mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
