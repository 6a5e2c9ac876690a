"""The CalDAV server's limit: the same GET + PUT If-Match per event MMS does, raw.

LIST names one event a line as "W<TAB>path" (under http://127.0.0.1:PORT): each is fetched; those
with W = 1 (the ones MMS rewrote) are written back (same body) with If-Match on the ETag just read.
THREADS threads share the list, each with its own keep-alive connection. Prints {"seconds": s, "events": n} as JSON.
"""
import http.client
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

local = threading.local()


def connection(port):
    if getattr(local, "conn", None) is None:
        local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    return local.conn


def get_put(port, item):
    write, path = item
    conn = connection(port)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    etag = resp.getheader("ETag")
    if resp.status != 200 or not etag:
        raise RuntimeError(f"GET {path}: {resp.status}")
    if not write:
        return
    conn.request(
        "PUT",
        path,
        body=body,
        headers={"If-Match": etag, "Content-Type": "text/calendar; charset=utf-8"},
    )
    resp = conn.getresponse()
    resp.read()
    if resp.status not in (200, 201, 204):
        raise RuntimeError(f"PUT {path}: {resp.status}")


def main():
    port, listing, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    with open(listing) as f:
        paths = [
            (flag == "1", path)
            for flag, path in (line.rstrip("\n").split("\t", 1) for line in f if line.strip())
        ]
    started = time.perf_counter()
    with ThreadPoolExecutor(max(threads, 1)) as pool:
        list(pool.map(lambda p: get_put(port, p), paths))
    print(json.dumps({"seconds": time.perf_counter() - started, "events": len(paths)}))


main()
