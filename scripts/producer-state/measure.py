#!/usr/bin/env python3
"""Append latency with many idempotent producers on one stream (issue 22, item 4).

Starts `durable-streams serve` (file store, fresh temp data directory, durability always) on a free loopback port,
registers N producers with ids of a given length on stream "hot", then measures
  1. sequential 1-byte producer appends to "hot" (one producer, increasing seq);
  2. 1-byte appends to an unrelated stream "cold" alone;
  3. 1-byte appends to "cold" while another connection appends to "hot" in a loop.
Prints p50/p90/p99/max in milliseconds. A measurement, not a test: numbers depend on the machine.

usage: measure.py <path to durable-streams.dll> [--producers 1500] [--id-bytes 256] [--samples 300]
"""
import argparse, http.client, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def req(self, method, path, body=b"", headers=None):
        h = {"Content-Type": "text/plain"}
        h.update(headers or {})
        self.c.request(method, "/v1/stream/" + path, body=body, headers=h)
        r = self.c.getresponse()
        r.read()
        return r.status


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def report(label, ms):
    print(f"{label:<44} n={len(ms):4d}  p50={pct(ms,50):7.3f}  p90={pct(ms,90):7.3f}  p99={pct(ms,99):7.3f}  max={max(ms):7.3f} ms", flush=True)


def main():
    a = argparse.ArgumentParser()
    a.add_argument("dll")
    a.add_argument("--producers", type=int, default=1500)
    a.add_argument("--id-bytes", type=int, default=256)
    a.add_argument("--samples", type=int, default=300)
    args = a.parse_args()
    data = tempfile.mkdtemp(prefix="ds-producers-")
    port = free_port()
    server = subprocess.Popen(["dotnet", args.dll, "serve", "--port", str(port), "--data-dir", data],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        server.stdout.readline()  # wait for the listening line
        while True:
            line = server.stdout.readline()
            if "listening" in line or not line:
                break
        c = Client(port)
        assert c.req("PUT", "hot") == 201 and c.req("PUT", "cold") == 201
        started = time.perf_counter()
        for i in range(args.producers):
            pid = f"p{i:05d}-".ljust(args.id_bytes, "x")
            status = c.req("POST", "hot", b"x", {"Producer-Id": pid, "Producer-Epoch": "0", "Producer-Seq": "0"})
            assert status == 200, status
        print(f"registered {args.producers} producers with {args.id_bytes}-byte ids in {time.perf_counter() - started:.1f} s", flush=True)
        hot_id = "p00000-".ljust(args.id_bytes, "x")
        seq = [1]

        def hot_append(client):
            t = time.perf_counter()
            status = client.req("POST", "hot", b"y", {"Producer-Id": hot_id, "Producer-Epoch": "0", "Producer-Seq": str(seq[0])})
            assert status in (200, 204), status
            seq[0] += 1
            return (time.perf_counter() - t) * 1000

        def cold_append(client):
            t = time.perf_counter()
            assert client.req("POST", "cold", b"z") == 204
            return (time.perf_counter() - t) * 1000

        for _ in range(20):
            hot_append(c); cold_append(c)
        report(f"hot stream ({args.producers} producers), alone", [hot_append(c) for _ in range(args.samples)])
        report("unrelated stream, alone", [cold_append(c) for _ in range(args.samples)])
        stop = threading.Event()
        hot_client = Client(port)

        def hammer():
            while not stop.is_set():
                hot_append(hot_client)

        t = threading.Thread(target=hammer)
        t.start()
        time.sleep(0.5)
        cold = [cold_append(c) for _ in range(args.samples)]
        stop.set(); t.join()
        report("unrelated stream, while the hot one appends", cold)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
