#!/usr/bin/env python3
"""Soak: `imagegate serve` in front of `imagegate emulate` with faults on, at a steady rate.

Starts both from the binary given, sends OpenAI-dialect image requests to the gateway at a
fixed rate for the given time, and every interval samples the resident memory (VmRSS) and open
file descriptors of both processes. At the end it prints the client's outcomes by status and
error code, the gateway's upstream attempts by outcome kind (from /metrics), the upstream 429s
and the faults the emulator injected (from /emulator/stats), and the samples, so growth is
visible. Standard library only. See docs/performance.md, "Soak".
"""

import argparse
import collections
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

EMULATOR = """
seed = 21
[upstream]
latency = "200ms..800ms"
reject_latency = "50ms"

# Every fault except the 401 burst: the router disables a target on `unauthorized` until the
# gateway restarts (docs/router.md), so after one burst per target a soak would measure nothing.
[upstream.faults]
reset_before_headers = 0.01
reset_mid_body = 0.01
slow_body = 0.01
slow_body_bytes_per_second = 65536
truncated_body = 0.01
html_502 = 0.01
html_200 = 0.005
wrong_content_type = 0.01
oversized_body = 0.002
oversized_body_bytes = 70000000
never_responds = 0.005
burst_500 = 0.005
burst_length = 3

[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-2.5-flash-image"]
rpm = {rpm}

[[upstream.pool]]
provider = "gemini"
project = "proj-b"
models = ["gemini-2.5-flash-image"]
rpm = {rpm}

[[upstream.key]]
provider = "gemini"
project = "proj-a"
key = "soak-key-a"

[[upstream.key]]
provider = "gemini"
project = "proj-b"
key = "soak-key-b"
"""

GATEWAY = """
[providers.gemini-a]
kind = "gemini"
base_url = "{url}"
api_key_env = "SOAK_GEMINI_KEY_A"
project = "proj-a"
model = "gemini-2.5-flash-image"
timeout = "10s"

[providers.gemini-b]
kind = "gemini"
base_url = "{url}"
api_key_env = "SOAK_GEMINI_KEY_B"
project = "proj-b"
model = "gemini-2.5-flash-image"
timeout = "10s"

[providers.gemini-a.quota.models."gemini-2.5-flash-image"]
rpm = {rpm}

[providers.gemini-b.quota.models."gemini-2.5-flash-image"]
rpm = {rpm}

[routes.images]
targets = ["gemini-a", "gemini-b"]

[server]
max_wait = "10s"
concurrency = 32
default_route = "images"
"""


def first_line(proc, what):
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("listening on "):
        sys.exit(f"{what} did not start: first line {line!r}")
    return line.removeprefix("listening on ")


def sample(pid):
    """(RSS in KiB, open fds) of pid, or (None, None) when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds
    except (OSError, StopIteration):
        return None, None


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def get_text(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/debug/imagegate")
    ap.add_argument("--seconds", type=int, default=1800)
    ap.add_argument("--rate", type=float, default=2.0, help="requests per second")
    ap.add_argument("--rpm", type=int, default=100, help="each of the two pools' true RPM")
    ap.add_argument("--interval", type=int, default=60, help="seconds between samples")
    ap.add_argument("--size", default="512x512")
    ap.add_argument("--no-faults", action="store_true", help="the same run without faults, to compare")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)

    work = tempfile.mkdtemp(prefix="imagegate-soak-")
    with open(os.path.join(work, "emulator.toml"), "w") as f:
        emulator = EMULATOR.replace("{rpm}", str(args.rpm))
        if args.no_faults:
            emulator = re.sub(r"\[upstream\.faults\].*?\n\n", "", emulator, flags=re.S)
        f.write(emulator)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IMAGEGATE_", "GEMINI_", "OPENROUTER_", "OPENAI_", "GOOGLE_", "VERTEX_"))}
    env["IMAGEGATE_STATE_DIR"] = os.path.join(work, "state")
    env["RUST_LOG"] = "error"
    emu = subprocess.Popen([args.bin, "emulate", "emulator.toml"], cwd=work, env=env,
                           stdout=subprocess.PIPE, stderr=open(os.path.join(work, "emulator.log"), "w"))
    emu_url = first_line(emu, "the emulator")
    with open(os.path.join(work, "imagegate.toml"), "w") as f:
        f.write(GATEWAY.replace("{url}", emu_url).replace("{rpm}", str(args.rpm)))
    env["SOAK_GEMINI_KEY_A"] = "soak-key-a"
    env["SOAK_GEMINI_KEY_B"] = "soak-key-b"
    gw = subprocess.Popen([args.bin, "--config", "imagegate.toml", "serve", "--listen", "127.0.0.1:0"],
                          cwd=work, env=env, stdout=subprocess.PIPE,
                          stderr=open(os.path.join(work, "gateway.log"), "w"))
    gw_url = first_line(gw, "the gateway")
    print(f"soak: {args.seconds}s at {args.rate}/s, emulator {emu_url} (pid {emu.pid}), "
          f"gateway {gw_url} (pid {gw.pid}), files in {work}", flush=True)

    outcomes = collections.Counter()
    lock = threading.Lock()
    body = json.dumps({"model": "gemini-2.5-flash-image", "prompt": "a lighthouse at dawn",
                       "size": args.size}).encode()

    def one():
        req = urllib.request.Request(gw_url + "/v1/images/generations", data=body,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                data = json.load(r)
                ok = bool(data.get("data")) and bool(data["data"][0].get("b64_json"))
                key = "200 image" if ok else "200 without an image"
        except urllib.error.HTTPError as e:
            try:
                code = json.loads(e.read()).get("error", {}).get("code")
            except Exception:
                code = "unparsed"
            key = f"{e.code} {code}"
        except Exception as e:
            key = f"client error {type(e).__name__}"
        with lock:
            outcomes[key] += 1

    samples = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=128)
    start = time.monotonic()
    sent = 0
    next_sample = start
    try:
        while True:
            now = time.monotonic()
            if now - start >= args.seconds:
                break
            if now >= next_sample:
                g, e = sample(gw.pid), sample(emu.pid)
                try:
                    up429 = get_json(emu_url + "/emulator/stats")["totals"]["rate_limited"]
                except Exception:
                    up429 = None
                with lock:
                    done = sum(outcomes.values())
                row = {"t": round(now - start), "sent": sent, "done": done,
                       "gw_rss_kib": g[0], "gw_fds": g[1], "emu_rss_kib": e[0], "emu_fds": e[1],
                       "upstream_429": up429}
                samples.append(row)
                print("sample " + json.dumps(row), flush=True)
                next_sample += args.interval
            due = start + sent / args.rate
            if due > now:
                time.sleep(min(due - now, 0.5))
                continue
            pool.submit(one)
            sent += 1
        pool.shutdown(wait=True)
        g, e = sample(gw.pid), sample(emu.pid)
        stats = get_json(emu_url + "/emulator/stats")
        metrics = get_text(gw_url + "/metrics")
    finally:
        for p in (gw, emu):
            p.terminate()
        for p in (gw, emu):
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
    row = {"t": round(time.monotonic() - start), "sent": sent, "done": sum(outcomes.values()),
           "gw_rss_kib": g[0], "gw_fds": g[1], "emu_rss_kib": e[0], "emu_fds": e[1],
           "upstream_429": stats["totals"]["rate_limited"]}
    samples.append(row)
    print("sample " + json.dumps(row), flush=True)

    attempts = collections.Counter()
    for m in re.finditer(r'^imagegate_upstream_calls_total\{([^}]*)\} (\d+)', metrics, re.M):
        outcome = re.search(r'outcome="([^"]*)"', m.group(1))
        attempts[outcome.group(1) if outcome else "?"] += int(m.group(2))
    gw_rss = [s["gw_rss_kib"] for s in samples if s["gw_rss_kib"]]
    gw_fds = [s["gw_fds"] for s in samples if s["gw_fds"]]
    # Growth: the last sample against the one after the first five minutes (warm-up done).
    warm = next((s for s in samples if s["t"] >= 300), samples[0])
    summary = {
        "seconds": args.seconds, "rate_per_s": args.rate, "requests": sent,
        "outcomes": dict(sorted(outcomes.items())),
        "upstream_attempts_by_outcome": dict(sorted(attempts.items())),
        "upstream_429": stats["totals"]["rate_limited"],
        "emulator_images_served": stats["totals"]["admitted"],
        "faults_injected": stats.get("faults", {}),
        "gateway_rss_kib": {"min": min(gw_rss), "max": max(gw_rss), "after_5min": warm["gw_rss_kib"],
                            "last": gw_rss[-1]},
        "gateway_fds": {"min": min(gw_fds), "max": max(gw_fds), "last": gw_fds[-1]},
        "emulator_exit": emu.returncode, "gateway_exit": gw.returncode,
    }
    print("summary " + json.dumps(summary, indent=2), flush=True)


if __name__ == "__main__":
    main()
