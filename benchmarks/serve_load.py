"""Load run against `uniremoval serve` on loopback: does the server answer every request,
stay within its limits, and give its memory back?

Starts the real CLI server in a subprocess with a tiny UNTRAINED model (this measures the
server - queueing, limits, decode/encode, memory - not restoration quality), warms it up,
records its RSS, then runs a fixed number of requests from concurrent clients, a share of
them malformed (truncated PNG, text named .png, empty, over the byte cap, over the pixel
cap). Reports throughput, p50/p99 latency, answers by status, and server RSS before, at
peak and after a settle; writes JSON + Markdown to --out. Exit status 1 if any request got
no HTTP answer, the access log misses requests, or RSS does not come back near baseline.

    python benchmarks/serve_load.py --out bench_out
    python benchmarks/serve_load.py --requests 400 --clients 16 --queue-size 4 --size 512
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_model(folder: Path, width: int) -> Path:
    """A small NAFNet with random (untrained) weights: realistic compute shape, no quality."""
    import torch

    from uniremoval import nets
    from uniremoval.modelfile import save_model

    torch.manual_seed(0)
    args = {"width": width, "enc_blocks": [1, 1], "middle_blocks": 1}
    net = nets.build("nafnet", **args)
    return save_model(net, folder / "untrained_nafnet.json", "nafnet", args, ["untrained-benchmark"])


def photo_png(size: int, seed: int) -> bytes:
    """A photo-like PNG (smooth gradients plus noise) of size x size."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([xx, yy, 0.5 + 0.3 * np.sin(6 * xx + 4 * yy)], -1)
    img = np.clip(base + rng.normal(0, 0.03, base.shape), 0, 1)
    buf = io.BytesIO()
    Image.fromarray((img * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def malformed_uploads(good: bytes, max_upload: int, max_pixels: int) -> list[tuple[str, bytes, str]]:
    """(kind, bytes, filename) of bad uploads, each answered with a 4xx by a healthy server."""
    from PIL import Image

    side = int(max_pixels**0.5) + 64
    buf = io.BytesIO()
    Image.new("L", (side, side), 0).save(buf, "PNG")  # a few kB that decode to > max_pixels
    return [
        ("truncated_png", good[: len(good) // 3], "cut.png"),
        ("text_named_png", b"definitely not an image\n" * 40, "fake.png"),
        ("empty", b"", "empty.jpg"),
        ("over_byte_cap", os.urandom(max_upload + 1024), "huge.png"),
        ("over_pixel_cap", buf.getvalue(), "bomb.png"),
    ]


class RssSampler(threading.Thread):
    """Samples the server process's RSS every ``period`` seconds to find the peak."""

    def __init__(self, pid: int, period: float = 0.05) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.period = period
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except Exception:
                return
            time.sleep(self.period)


def rss(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


def run(args: argparse.Namespace) -> int:
    import httpx

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="serve_load_"))
    model = make_model(work, args.width)
    max_upload = int(args.max_upload_mb * 2**20)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = work / "server.log"
    cmd = [
        sys.executable, "-c", "from uniremoval.cli import main; main()", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--model", str(model), "--device", "cpu",
        "--max-upload-mb", str(args.max_upload_mb), "--max-pixels", str(args.max_pixels),
        "--max-concurrent", str(args.workers), "--queue-size", str(args.queue_size),
        "--timeout", str(args.timeout), "--log-level", "warning",
    ]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    log_fh = open(log_path, "wb")
    server = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT)
    report: dict[str, Any] = {}
    ok = True
    try:
        end = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"server exited with {server.returncode}: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > end:
                raise RuntimeError("server did not become healthy within 60 s")
            time.sleep(0.1)

        goods = [photo_png(args.size, i) for i in range(8)]
        bads = malformed_uploads(goods[0], max_upload, args.max_pixels)
        with httpx.Client(timeout=args.timeout + 30) as c:
            for g in goods[:4]:  # warm-up: first inference allocates torch's buffers
                c.post(f"{base}/v1/restore", files={"file": ("warm.png", g, "image/png")}).raise_for_status()
        time.sleep(args.settle)
        rss_before = rss(server.pid)
        load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

        n_bad = int(round(args.requests * args.malformed))
        # Spread the malformed uploads evenly through the run.
        plan: list[tuple[str, bytes, str]] = []
        bad_every = args.requests / n_bad if n_bad else float("inf")
        next_bad, b = 0.0, 0
        for i in range(args.requests):
            if n_bad and i >= next_bad and b < n_bad:
                plan.append(bads[b % len(bads)])
                b += 1
                next_bad += bad_every
            else:
                plan.append(("good", goods[i % len(goods)], f"photo{i}.png"))

        local = threading.local()

        def one(item: tuple[str, bytes, str]) -> tuple[str, list[int | None], float, str]:
            """One logical request, retried after 503 up to --retries times with exponential
            backoff from --backoff s, capped by the server's Retry-After (as a polite client
            does; constant fast polling would mostly measure the cost of 503s)."""
            kind, data, name = item
            if not hasattr(local, "client"):
                local.client = httpx.Client(timeout=args.timeout + 30)
            statuses: list[int | None] = []
            detail = ""
            t0 = time.perf_counter()
            for attempt in range(args.retries + 1):
                try:
                    res = local.client.post(f"{base}/v1/restore", files={"file": (name, data, "image/png")})
                    statuses.append(res.status_code)
                    detail = "" if res.status_code == 200 else res.json().get("error", {}).get("code", "")
                    if res.status_code == 503 and "retry-after" not in res.headers:
                        detail = "503 without Retry-After"
                        break
                except httpx.HTTPError as e:  # no HTTP answer at all
                    statuses.append(None)
                    detail = type(e).__name__
                    break
                if res.status_code != 503 or attempt == args.retries:
                    break
                cap = float(res.headers.get("retry-after", "5"))
                time.sleep(min(args.backoff * 2**attempt, cap) * random.uniform(0.8, 1.2))
            return kind, statuses, (time.perf_counter() - t0) * 1000, detail

        sampler = RssSampler(server.pid)
        sampler.start()
        t_start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            results = list(pool.map(one, plan))
        wall = time.perf_counter() - t_start
        sampler.stop.set()
        sampler.join()
        time.sleep(args.settle)
        rss_after = rss(server.pid)
        health = httpx.get(f"{base}/healthz", timeout=5).json()

        attempts = Counter(str(x) if x is not None else "no_answer" for _, st, _, _ in results for x in st)
        final = Counter(str(st[-1]) if st[-1] is not None else "no_answer" for _, st, _, _ in results)
        by_kind: dict[str, Counter[str]] = {}
        for kind, st, _, detail in results:
            label = f"{st[-1]} {detail}".strip() if st[-1] is not None else f"no_answer {detail}"
            by_kind.setdefault(kind, Counter())[label] += 1
        lat_all = [ms for _, st, ms, _ in results if st[-1] is not None]
        lat_ok = [ms for _, st, ms, _ in results if st[-1] == 200]
        n_attempts = sum(attempts.values())
        no_answer = attempts.get("no_answer", 0)
        growth = rss_after - rss_before
        rss_ok = growth <= max(args.rss_tolerance_mb * 2**20, 0.10 * rss_before)
        ok = no_answer == 0 and rss_ok and health["in_flight"] == 0
        report = {
            "benchmark": "serve_load",
            "note": "tiny UNTRAINED NAFNet: measures the HTTP server (queue, limits, I/O, memory), not restoration quality",
            "machine": {
                "cpu_cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                # Other work on the machine slows the server; the load average says how much.
                "loadavg_1min_at_start": round(load_at_start, 2),
            },
            "config": {
                "requests": args.requests, "clients": args.clients, "malformed_share": args.malformed,
                "image": f"{args.size}x{args.size} PNG", "model": f"nafnet width {args.width} (untrained)",
                "server_workers": args.workers, "queue_size": args.queue_size, "timeout_s": args.timeout,
                "max_upload_mb": args.max_upload_mb, "max_pixels": args.max_pixels, "torch_threads": args.threads,
                "retries_after_503": args.retries, "backoff_s": args.backoff,
            },
            "wall_s": round(wall, 2),
            "throughput_answers_per_s": round((n_attempts - no_answer) / wall, 2),
            "throughput_requests_done_per_s": round(len(lat_all) / wall, 2),
            "throughput_restored_per_s": round(len(lat_ok) / wall, 2),
            "latency_ms_all": {"p50": round(pct(lat_all, 50), 1), "p99": round(pct(lat_all, 99), 1), "max": round(max(lat_all, default=0), 1)},
            "latency_ms_200": {"p50": round(pct(lat_ok, 50), 1), "p99": round(pct(lat_ok, 99), 1)},
            "http_attempts": n_attempts,
            "attempts_by_status": dict(sorted(attempts.items())),
            "final_by_status": dict(sorted(final.items())),
            "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(by_kind.items())},
            "no_answer": no_answer,
            "rss_mb": {
                "before": round(rss_before / 2**20, 1), "peak": round(sampler.peak / 2**20, 1),
                "after": round(rss_after / 2**20, 1), "growth": round(growth / 2**20, 1),
                "settle_s": args.settle, "back_to_baseline": rss_ok,
            },
            "healthz_after": health,
        }
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log_fh.close()
    lines = [json.loads(l) for l in log_path.read_text().splitlines() if l.startswith("{")]
    restore_lines = [l for l in lines if l.get("path") == "/v1/restore"]
    expected = report.get("http_attempts", -1) - report.get("no_answer", 0) + 4  # + warm-up
    report["access_log"] = {"restore_lines": len(restore_lines), "expected": expected}
    ok = ok and len(restore_lines) == expected
    report["passed"] = ok
    (out / "serve_load.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "serve_load.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if ok else 1


def markdown(r: dict[str, Any]) -> str:
    c = r["config"]
    rows = "\n".join(
        f"| {k} | {r['attempts_by_status'].get(k, 0)} | {r['final_by_status'].get(k, 0)} |"
        for k in sorted(set(r["attempts_by_status"]) | set(r["final_by_status"]))
    )
    kinds = "\n".join(f"| {k} | {', '.join(f'{s}: {n}' for s, n in v.items())} |" for k, v in r["by_kind"].items())
    m = r["rss_mb"]
    return f"""# serve load run ({'PASSED' if r.get('passed') else 'FAILED'})

{r['note']}.

{c['requests']} requests from {c['clients']} concurrent clients on loopback, {c['malformed_share']:.0%} malformed;
good uploads are {c['image']}; server: {c['server_workers']} worker(s), queue {c['queue_size']},
{c['max_upload_mb']} MiB / {c['max_pixels']} pixel caps, torch threads {c['torch_threads']};
{r['machine']['cpu_cores']} CPU cores, 1-min load average {r['machine']['loadavg_1min_at_start']} when the run started.

| metric | value |
|---|---|
| wall time | {r['wall_s']} s |
| HTTP answers/s (all statuses, incl. 503s) | {r['throughput_answers_per_s']} |
| requests finished/s (after 503 retries) | {r['throughput_requests_done_per_s']} |
| restored images/s (200) | {r['throughput_restored_per_s']} |
| latency p50 / p99 / max, all (incl. retries) | {r['latency_ms_all']['p50']} / {r['latency_ms_all']['p99']} / {r['latency_ms_all']['max']} ms |
| latency p50 / p99, 200 only | {r['latency_ms_200']['p50']} / {r['latency_ms_200']['p99']} ms |
| requests with no HTTP answer | {r['no_answer']} |
| server RSS before / peak / after ({m['settle_s']} s settle) | {m['before']} / {m['peak']} / {m['after']} MiB (growth {m['growth']} MiB) |
| access-log lines for /v1/restore | {r['access_log']['restore_lines']} of {r['access_log']['expected']} |

{r['http_attempts']} HTTP attempts; a 503 is retried after {c['backoff_s']} s doubling up to the Retry-After, at most {c['retries_after_503']} times.

| status | attempts | final answers |
|---|---|---|
{rows}

| upload kind | answers (status error-code: count) |
|---|---|
{kinds}
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_out")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--clients", type=int, default=12, help="concurrent client threads")
    p.add_argument("--malformed", type=float, default=0.10, help="share of malformed uploads")
    p.add_argument("--size", type=int, default=256, help="side of the good PNG uploads")
    p.add_argument("--width", type=int, default=16, help="NAFNet width of the untrained model")
    p.add_argument("--workers", type=int, default=1, help="server --max-concurrent")
    p.add_argument("--queue-size", type=int, default=8)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--max-upload-mb", type=float, default=2.0)
    p.add_argument("--max-pixels", type=int, default=4_000_000)
    p.add_argument("--threads", type=int, default=None, help="server torch threads")
    p.add_argument("--retries", type=int, default=30, help="retries of a request answered 503")
    p.add_argument("--backoff", type=float, default=0.25, help="first wait before retrying a 503 (doubles, capped by Retry-After)")
    p.add_argument("--settle", type=float, default=2.0, help="seconds before each RSS reading")
    p.add_argument("--rss-tolerance-mb", type=float, default=30.0)
    sys.exit(run(p.parse_args()))


if __name__ == "__main__":
    main()
