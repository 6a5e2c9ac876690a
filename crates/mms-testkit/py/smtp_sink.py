"""SMTP sink for MMS tests: an aiosmtpd server that stores every message it accepts.

Each accepted message becomes `<n>.eml` (the DATA bytes as received) plus `<n>.json` with the
envelope (`mail_from`, `rcpt_to`); the JSON is written last and atomically, so a reader that sees
it also sees the complete message.

Modes (--mode): `accept` stores messages; `reject` answers 550 to DATA (a permanent refusal);
`defer` answers 451 to DATA (a transient one).

Limits that real relays enforce:
- `--max-line N`: a line of DATA longer than N octets (without its CRLF, as sent on the wire;
  RFC 5321 4.5.3.1.6 allows 998) is answered `500 5.5.2 Line too long` and the message is not
  stored. 0 turns the check off.
- `--max-recipients N`: a RCPT beyond the N-th of one transaction is answered
  `452 4.5.3 Too many recipients` (as Postfix does past `smtpd_recipient_limit`). 0: no limit.
- `--idle-timeout SECS`: a connection idle that long is closed (aiosmtpd's `timeout`).
- `--refuse ADDR` (repeatable) and `--refuse-file FILE` (one address a line): RCPT of such an
  address (case-insensitive) is answered `550 5.1.1 mailbox unavailable`.

Transport security (--tls, with --cert and --key PEM files): `none`; `starttls` offers STARTTLS
and refuses mail until the client has used it; `implicit` speaks TLS from the first byte (SMTPS).

Authentication (--auth-user and --auth-password): AUTH PLAIN/LOGIN is required before MAIL and
accepted only with that user name and password, and only over TLS.

Usage: python smtp_sink.py --port PORT --dir DIR [--mode accept|reject|defer]
       [--max-line N] [--max-recipients N] [--refuse ADDR ...] [--refuse-file FILE]
       [--tls none|starttls|implicit --cert CERT --key KEY] [--auth-user U --auth-password P]
"""

import argparse
import asyncio
import itertools
import json
import os
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class StoringHandler:
    def __init__(self, directory, mode, max_line, max_recipients, refused):
        self.directory = directory
        self.mode = mode
        self.max_line = max_line
        self.max_recipients = max_recipients
        self.refused = refused
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refused:
            return "550 5.1.1 mailbox unavailable"
        if self.max_recipients and len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    def longest_wire_line(self, data):
        """The longest line as it was on the wire: aiosmtpd has removed the stuffed dots."""
        longest = 0
        for line in data.split(b"\r\n"):
            longest = max(longest, len(line) + (1 if line.startswith(b".") else 0))
        return longest

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "reject":
            return "550 5.7.1 message refused by the test sink (reject mode)"
        if self.mode == "defer":
            return "451 4.3.0 try again later (defer mode of the test sink)"
        if self.max_line:
            longest = self.longest_wire_line(envelope.original_content or b"")
            if longest > self.max_line:
                return f"500 5.5.2 Line too long ({longest} octets, limit {self.max_line})"
        n = next(self.counter)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(os.path.join(self.directory, f"{n}.eml"), "wb") as f:
            f.write(data)
        peer = session.peer
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_to": list(envelope.rcpt_tos),
            # Which connection carried it: tests of connection reuse compare these.
            "peer": f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer),
        }
        tmp = os.path.join(self.directory, f".{n}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f)
        os.replace(tmp, os.path.join(self.directory, f"{n}.json"))
        return "250 2.0.0 stored"


def fixed_credentials(user, password):
    """An aiosmtpd authenticator that accepts exactly one user name and password."""

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # handled=False: aiosmtpd then sends the refusal (535) itself; with its default (True)
        # it would send nothing and the client would wait forever.
        return AuthResult(success=ok, handled=False)

    return authenticate


def smtp_factory(handler, args, context):
    options = {"hostname": "mms-test-sink"}
    if args.idle_timeout:
        # aiosmtpd answers "421" and closes a connection idle this long, as relays do.
        options["timeout"] = args.idle_timeout
    if args.tls == "starttls":
        options.update(tls_context=context, require_starttls=True)
    if args.auth_user is not None:
        options.update(
            authenticator=fixed_credentials(args.auth_user, args.auth_password),
            auth_required=True,
            # aiosmtpd only counts a STARTTLS upgrade as TLS; on an implicit-TLS connection
            # every byte is already encrypted, so AUTH must not wait for an upgrade.
            auth_require_tls=args.tls == "starttls",
        )
    return lambda: LongLineSMTP(handler, **options)


class LongLineSMTP(SMTP):
    """aiosmtpd refuses lines over 1001 bytes itself, with its own wording and before the
    handler sees the message; reading up to 1 MiB a line lets `--max-line` decide instead (and
    lets a test see exactly what a sender wrote when the check is off)."""

    line_length_limit = 1 << 20


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--mode", choices=["accept", "reject", "defer"], default="accept")
    parser.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth-user")
    parser.add_argument("--auth-password")
    parser.add_argument("--max-line", type=int, default=998)
    parser.add_argument("--max-recipients", type=int, default=0)
    parser.add_argument("--refuse", action="append", default=[])
    parser.add_argument("--refuse-file")
    parser.add_argument("--idle-timeout", type=float, default=0)
    args = parser.parse_args()
    refused = {a.strip().lower() for a in args.refuse if a.strip()}
    if args.refuse_file:
        with open(args.refuse_file) as f:
            refused |= {line.strip().lower() for line in f if line.strip()}
    if args.tls != "none" and not (args.cert and args.key):
        parser.error("--tls starttls/implicit needs --cert and --key")
    if (args.auth_user is None) != (args.auth_password is None):
        parser.error("--auth-user and --auth-password go together")
    context = None
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    handler = StoringHandler(args.dir, args.mode, args.max_line, args.max_recipients, refused)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        smtp_factory(handler, args, context),
        host="127.0.0.1",
        port=args.port,
        ssl=context if args.tls == "implicit" else None,
    )
    auth = "required" if args.auth_user is not None else "off"
    print(
        f"smtp sink listening on 127.0.0.1:{args.port} mode={args.mode} tls={args.tls} auth={auth} "
        f"max_line={args.max_line} max_recipients={args.max_recipients} refused={len(refused)}",
        flush=True,
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
