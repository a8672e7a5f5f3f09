#!/usr/bin/env python3
"""Peak memory of `imagegate serve` and `imagegate batch` with N requests in flight, each
sending a reference image and getting a 4K image back (docs/performance.md, "Memory").

A stand-in Gemini upstream (this script, standard library only) reads each request whole,
holds it for --hold seconds so that all N are in flight at once, and answers with one
prebuilt generateContent body holding a 4096x4096 PNG of --image-mb MB (noise rows, so it does
not compress away). The reference is a PNG of --ref-mb MB. Then:

- gateway: `imagegate serve` in front of it, N concurrent OpenAI `/v1/images/edits`
  (multipart, the reference as `image`, size 4096x4096); peak = the gateway's VmHWM.
- batch: `imagegate batch` of N jobs, each with the reference, `--concurrency N`; peak = the
  "Maximum resident set size" of /usr/bin/time -v.

Bytes in flight = N x (reference + image). The target is peak RSS <= 3 x bytes in flight.
"""

import argparse
import base64
import http.server
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib

MODEL = "gemini-3-pro-image-preview"


def png(width, height, noise_rows, seed):
    """An RGB PNG whose first `noise_rows` rows are random bytes (incompressible)."""
    rng = random.Random(seed)
    raw = bytearray()
    zero = bytes(width * 3)
    for y in range(height):
        raw.append(0)
        raw += rng.randbytes(width * 3) if y < noise_rows else zero
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(raw), 1)) + chunk(b"IEND", b""))


def sized_png(width, height, mb, seed):
    rows = min(height, int(mb * 1e6 / (width * 3)) + 1)
    return png(width, height, rows, seed)


class Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def handler(answer, hold, stats):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            n = int(self.headers.get("content-length", 0))
            left = n
            while left:
                got = self.rfile.read(min(left, 1 << 20))
                if not got:
                    break
                left -= len(got)
            with stats["lock"]:
                stats["now"] += 1
                stats["max"] = max(stats["max"], stats["now"])
                stats["request_bytes"] = max(stats["request_bytes"], n)
            time.sleep(hold)
            with stats["lock"]:
                stats["now"] -= 1
            self.send_response(200)
            self.send_header("content-type", "application/json; charset=UTF-8")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass
    return H


def proc_mem(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def multipart(fields, files):
    boundary = "imagegate-measure-boundary"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f'Content-Type: image/png\r\n\r\n'.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/debug/imagegate")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--ref-mb", type=float, default=10.0)
    ap.add_argument("--image-mb", type=float, default=12.0)
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--only", choices=["gateway", "batch"])
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)

    work = tempfile.mkdtemp(prefix="imagegate-memory-")
    image = sized_png(4096, 4096, args.image_mb, 1)
    ref = sized_png(2048, 2048, args.ref_mb, 2)
    with open(os.path.join(work, "ref.png"), "wb") as f:
        f.write(ref)
    answer = json.dumps({
        "candidates": [{"content": {"role": "model", "parts": [
            {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(image).decode()}}]},
            "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 2000, "totalTokenCount": 2010},
        "modelVersion": MODEL, "responseId": "measure"}).encode()
    stats = {"lock": threading.Lock(), "now": 0, "max": 0, "request_bytes": 0}
    server = Upstream(("127.0.0.1", 0), handler(answer, args.hold, stats))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream = f"http://127.0.0.1:{server.server_address[1]}"
    in_flight = args.n * (len(ref) + len(image))
    print(f"n={args.n} reference={len(ref)} B image={len(image)} B (answer {len(answer)} B) "
          f"bytes in flight={in_flight} B ({in_flight / 2**20:.0f} MiB); files in {work}", flush=True)

    config = f"""
[providers.gemini]
base_url = "{upstream}"
project = "measure"
model = "{MODEL}"
timeout = "600s"

[server]
concurrency = {args.n * 2}
max_wait = "600s"
"""
    with open(os.path.join(work, "imagegate.toml"), "w") as f:
        f.write(config)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IMAGEGATE_", "GEMINI_", "OPENROUTER_", "OPENAI_", "GOOGLE_", "VERTEX_"))}
    env["IMAGEGATE_STATE_DIR"] = os.path.join(work, "state")
    env["GEMINI_API_KEY"] = "measure-key"
    results = {}

    if args.only in (None, "gateway"):
        gw = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0"], cwd=work, env=env,
                              stdout=subprocess.PIPE, stderr=open(os.path.join(work, "gateway.log"), "w"))
        line = gw.stdout.readline().decode().strip()
        url = line.removeprefix("listening on ")
        base = proc_mem(gw.pid)
        body, ctype = multipart({"model": MODEL, "prompt": "the same scene at dawn", "size": "4096x4096"},
                                {"image": ("ref.png", ref)})
        codes, sizes = [], []
        lock = threading.Lock()

        def one():
            req = urllib.request.Request(url + "/v1/images/edits", data=body, headers={"content-type": ctype})
            try:
                with urllib.request.urlopen(req, timeout=900) as r:
                    data = json.load(r)
                    got = len(base64.b64decode(data["data"][0]["b64_json"]))
                    with lock:
                        codes.append(r.status)
                        sizes.append(got)
            except urllib.error.HTTPError as e:
                with lock:
                    codes.append(f"{e.code} {e.read()[:300]!r}")
        started = time.monotonic()
        threads = [threading.Thread(target=one) for _ in range(args.n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        peak = proc_mem(gw.pid)
        gw.terminate()
        gw.wait(timeout=60)
        ok = sum(1 for c in codes if c == 200) == args.n and all(s == len(image) for s in sizes)
        results["gateway"] = {"ok": ok, "codes": sorted(set(map(str, codes))),
                              "seconds": round(time.monotonic() - started, 1),
                              "upstream_max_concurrent": stats["max"],
                              "baseline_rss_kib": base["VmRSS"], "peak_rss_kib": peak["VmHWM"],
                              "peak_over_in_flight": round(peak["VmHWM"] * 1024 / in_flight, 2)}
        print("gateway " + json.dumps(results["gateway"]), flush=True)
        stats["max"] = 0

    if args.only in (None, "batch"):
        with open(os.path.join(work, "jobs.jsonl"), "w") as f:
            for i in range(args.n):
                f.write(json.dumps({"id": f"j{i}", "prompt": f"the same scene at dawn {i}", "size": "4K",
                                    "references": ["ref.png"]}) + "\n")
        shutil.rmtree(os.path.join(work, "out"), ignore_errors=True)
        started = time.monotonic()
        done = subprocess.run(["/usr/bin/time", "-v", binary, "batch", "jobs.jsonl", "--out", "out",
                               "--provider", "gemini", "--concurrency", str(args.n), "--json"],
                              cwd=work, env=env, capture_output=True, text=True)
        peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
        written = [n for n in os.listdir(os.path.join(work, "out")) if n.endswith(".png")] \
            if os.path.isdir(os.path.join(work, "out")) else []
        ok = done.returncode == 0 and len(written) == args.n
        results["batch"] = {"ok": ok, "exit": done.returncode, "images": len(written),
                            "seconds": round(time.monotonic() - started, 1),
                            "upstream_max_concurrent": stats["max"], "peak_rss_kib": peak,
                            "peak_over_in_flight": round(peak * 1024 / in_flight, 2)}
        if not ok:
            results["batch"]["stderr"] = done.stderr[-2000:]
        print("batch " + json.dumps(results["batch"]), flush=True)
    server.shutdown()
    sys.exit(0 if all(r["ok"] for r in results.values()) else 1)


if __name__ == "__main__":
    main()
