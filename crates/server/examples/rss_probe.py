"""50 requests in flight against the gateway, each answered with a 4K image, the clients not
reading until the peak has been sampled: the worst case for the gateway's memory."""
import socket, sys, time, threading
host, port, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
body = b'{"prompt": "a lighthouse"}'
req = (f"POST /v1/images/generations HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
       f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
base = rss()
socks = []
for _ in range(50):
    s = socket.create_connection((host, port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(req)
    socks.append(s)
peak = base
end = time.time() + 4.0
while time.time() < end:
    peak = max(peak, rss())
    time.sleep(0.005)
total = 0
counts = [0] * len(socks)
def drain(i, s):
    s.settimeout(10)
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        counts[i] += len(chunk)
    s.close()
threads = [threading.Thread(target=drain, args=(i, s)) for i, s in enumerate(socks)]
for t in threads: t.start()
for t in threads: t.join()
total = sum(counts)
print(f"baseline {base} kB, peak {peak} kB, grew {peak - base} kB; received {total} bytes from 50 responses")
