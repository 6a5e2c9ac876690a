"""The SMTP relay's limit: the same messages over ONE connection with smtplib.

DIR holds N.json (envelope: mail_from, rcpt_to) and N.eml (the DATA bytes) as the test sink
stores them; the first LIMIT of them are sent again to 127.0.0.1:PORT over one SMTP connection. Prints
{"seconds": s, "messages": n} as JSON.
"""
import json
import os
import smtplib
import sys
import time


def main():
    directory, port, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    numbers = sorted(
        int(name[:-5]) for name in os.listdir(directory) if name.endswith(".json")
    )[:limit]
    messages = []
    for n in numbers:
        with open(os.path.join(directory, f"{n}.json")) as f:
            envelope = json.load(f)
        with open(os.path.join(directory, f"{n}.eml"), "rb") as f:
            messages.append((envelope["mail_from"], envelope["rcpt_to"], f.read()))
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for mail_from, rcpt_to, data in messages:
            smtp.sendmail(mail_from, rcpt_to, data)
    print(json.dumps({"seconds": time.perf_counter() - started, "messages": len(messages)}))


main()
