# Usage: python3 scripts/pgbench/failover.py "<connection string>" artifacts/bin/DurableStreams.Cli/release/durable-streams.dll
# Two serve --postgres nodes; a producer appends through A; A is SIGKILLed mid-run; the producer retries the same
# (epoch, seq) through B. Reports the pause (last ack through A -> first ack through B), retries, and verifies the stream.
import http.client, os, signal, subprocess, sys, time, re, uuid
conn = sys.argv[1]; dll = sys.argv[2]
def start():
    p = subprocess.Popen(["dotnet", dll, "serve", "--port", "0", "--postgres", conn], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while True:
        line = p.stdout.readline()
        m = re.search(r"listening on http://127.0.0.1:(\d+)", line)
        if m: return p, int(m.group(1))
a, pa = start(); b, pb = start()
name = "/v1/stream/failover-" + uuid.uuid4().hex
def req(port, method, body=b"", headers={}):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, name, body=body, headers={"Content-Type": "text/plain", **headers}); r = c.getresponse(); r.read(); c.close(); return r.status
assert req(pa, "PUT") == 201
expected = b""; port = pa; retries = 0; last_a = None; first_b = None; killed_at = None
for seq in range(600):
    body = f"{seq};".encode(); expected += body
    if seq == 300:
        os.kill(a.pid, signal.SIGKILL); killed_at = time.perf_counter()
    while True:
        try:
            st = req(port, "POST", body, {"Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": str(seq)})
            if st in (200, 204):
                now = time.perf_counter()
                if port == pa: last_a = now
                elif first_b is None: first_b = now
                break
            raise Exception(f"status {st}")
        except Exception as e:
            retries += 1; port = pb
c = http.client.HTTPConnection("127.0.0.1", pb); c.request("GET", name + "?offset=-1"); data = c.getresponse().read()
print(f"verified={data == expected} retries={retries} pause_after_kill_ms={(first_b - killed_at)*1000:.1f} last_ack_A_to_first_ack_B_ms={(first_b - last_a)*1000:.1f}")
b.terminate(); b.wait()
