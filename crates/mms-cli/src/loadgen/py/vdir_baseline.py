"""The embedded store's limit: the same file reads and writes MMS does, in a plain loop.

LIST names one file a line as "W<TAB>path": every file is read; those with W = 1 (the ones MMS
rewrote) are written to a temp file beside it, fsynced and renamed over the original, as the vdir
mailbox does per rewritten meeting; THREADS threads share the list. Prints
{"seconds": s, "files": n} as JSON.
"""
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def rewrite(item):
    write, path = item
    with open(path, "rb") as f:
        data = f.read()
    if not write:
        return
    temp = path + ".tmp"
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(temp, path)


def main():
    listing, threads = sys.argv[1], int(sys.argv[2])
    with open(listing) as f:
        files = [
            (flag == "1", path)
            for flag, path in (line.rstrip("\n").split("\t", 1) for line in f if line.strip())
        ]
    started = time.perf_counter()
    if threads <= 1:
        for item in files:
            rewrite(item)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(rewrite, files))
    print(json.dumps({"seconds": time.perf_counter() - started, "files": len(files)}))


main()
