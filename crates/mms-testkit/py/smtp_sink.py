"""SMTP sink for MMS tests: an aiosmtpd server that stores every message it accepts.

Each accepted message becomes `<n>.eml` (the DATA bytes as received) plus `<n>.json` with the
envelope (`mail_from`, `rcpt_to`); the JSON is written last and atomically, so a reader that sees
it also sees the complete message.

Modes (--mode): `accept` stores messages; `reject` answers 550 to DATA (a permanent refusal);
`defer` answers 451 to DATA (a transient one).

Usage: python smtp_sink.py --port PORT --dir DIR [--mode accept|reject|defer]
"""

import argparse
import asyncio
import itertools
import json
import os

from aiosmtpd.smtp import SMTP


class StoringHandler:
    def __init__(self, directory, mode):
        self.directory = directory
        self.mode = mode
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "reject":
            return "550 5.7.1 message refused by the test sink (reject mode)"
        if self.mode == "defer":
            return "451 4.3.0 try again later (defer mode of the test sink)"
        n = next(self.counter)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(os.path.join(self.directory, f"{n}.eml"), "wb") as f:
            f.write(data)
        meta = {"mail_from": envelope.mail_from, "rcpt_to": list(envelope.rcpt_tos)}
        tmp = os.path.join(self.directory, f".{n}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f)
        os.replace(tmp, os.path.join(self.directory, f"{n}.json"))
        return "250 2.0.0 stored"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--mode", choices=["accept", "reject", "defer"], default="accept")
    args = parser.parse_args()
    handler = StoringHandler(args.dir, args.mode)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="mms-test-sink"), host="127.0.0.1", port=args.port
    )
    print(f"smtp sink listening on 127.0.0.1:{args.port} mode={args.mode}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
