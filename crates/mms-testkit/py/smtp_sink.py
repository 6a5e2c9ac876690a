"""SMTP sink for MMS tests: an aiosmtpd server that stores every message it accepts.

Each accepted message becomes `<n>.eml` (the DATA bytes as received) plus `<n>.json` with the
envelope (`mail_from`, `rcpt_to`); the JSON is written last and atomically, so a reader that sees
it also sees the complete message.

Modes (--mode): `accept` stores messages; `reject` answers 550 to DATA (a permanent refusal);
`defer` answers 451 to DATA (a transient one).

Transport security (--tls, with --cert and --key PEM files): `none`; `starttls` offers STARTTLS
and refuses mail until the client has used it; `implicit` speaks TLS from the first byte (SMTPS).

Authentication (--auth-user and --auth-password): AUTH PLAIN/LOGIN is required before MAIL and
accepted only with that user name and password, and only over TLS.

Usage: python smtp_sink.py --port PORT --dir DIR [--mode accept|reject|defer]
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
    return lambda: SMTP(handler, **options)


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
    args = parser.parse_args()
    if args.tls != "none" and not (args.cert and args.key):
        parser.error("--tls starttls/implicit needs --cert and --key")
    if (args.auth_user is None) != (args.auth_password is None):
        parser.error("--auth-user and --auth-password go together")
    context = None
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    handler = StoringHandler(args.dir, args.mode)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        smtp_factory(handler, args, context),
        host="127.0.0.1",
        port=args.port,
        ssl=context if args.tls == "implicit" else None,
    )
    auth = "required" if args.auth_user is not None else "off"
    print(
        f"smtp sink listening on 127.0.0.1:{args.port} mode={args.mode} tls={args.tls} auth={auth}",
        flush=True,
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
