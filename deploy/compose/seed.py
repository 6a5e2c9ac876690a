#!/usr/bin/env python3
"""Seed the compose demo: a tenant `demo` with three users, each with a calendar of Outlook-style
invitations on Radicale (two future Teams meetings, one future Skype for Business meeting, one
lunch without an online block), then start a migration for each user through the control API.

Standard library only (it runs in a stock python image). Idempotent: run it again and it adds
nothing but new migrations. Settings from the environment: MMS_API (http://api:8080),
MMS_TOKEN (the operator token), RADICALE (http://radicale:5232).
"""
import base64
import datetime
import json
import os
import sys
import time
import urllib.error
import urllib.request

API = os.environ.get("MMS_API", "http://api:8080")
TOKEN = os.environ["MMS_TOKEN"]
RADICALE = os.environ.get("RADICALE", "http://radicale:5232")
TENANT = "demo"
USERS = ["adele@demo.example", "lee@demo.example", "joni@demo.example"]

TEAMS_BLOCK = (
    "________________________________________________________________________________\\n"
    "Microsoft Teams meeting\\nJoin on your computer\\, mobile app or room device\\n"
    "Click here to join the meeting<https://teams.microsoft.com/l/meetup-join/19%3ameeting_OLD%40thread.v2/0>\\n"
    "Meeting ID: 111 222 333 444\\nPasscode: abc123\\n"
    "________________________________________________________________________________\\n"
)
SFB_BLOCK = (
    ".........................................................................................................................................\\n"
    "Join Skype Meeting<https://meet.contoso.com/old/ABCD1234>\\n"
    "Trouble Joining? Try Skype Web App<https://meet.contoso.com/old/ABCD1234?sl=1>\\n"
    "Join by phone\\n+1 425-555-0199 (Redmond) English (United States)\\n"
    "Conference ID: 7654321\\n"
    ".........................................................................................................................................\\n"
)


def request(method, url, body=None, headers=None, ok=(200, 201, 204)):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        if e.code in ok:
            return e.code, e.read().decode()
        raise SystemExit(f"{method} {url}: {e.code} {e.read().decode()}")


def api(method, path, body, ok=(200, 201, 204)):
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    return request(method, API + path, json.dumps(body), headers, ok)


def wait_for(url, what):
    for _ in range(120):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise SystemExit(f"{what} at {url} did not answer in two minutes")


def invitation(uid, organizer, attendee, start, summary, block):
    fmt = lambda t: t.strftime("%Y%m%dT%H%M%SZ")
    description = f"Agenda: {summary}.\\n\\n{block}"
    return "\r\n".join([
        "BEGIN:VCALENDAR",
        "PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"SUMMARY:{summary}",
        f"DTSTART:{fmt(start)}",
        f"DTEND:{fmt(start + datetime.timedelta(minutes=30))}",
        f"DTSTAMP:{fmt(datetime.datetime.now(datetime.timezone.utc))}",
        f"ORGANIZER:mailto:{organizer}",
        f"ATTENDEE;ROLE=REQ-PARTICIPANT;RSVP=TRUE:mailto:{attendee}",
        f"DESCRIPTION:{description}",
        "SEQUENCE:0",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ])


def main():
    wait_for(f"{API}/readyz", "the MMS API")
    # The demo tenant owns its users' mail domain: MMS migrates only users in a tenant's domains.
    status, _ = api("POST", "/v1/tenants", {"Tenant": TENANT, "Domains": ["demo.example"]},
                    ok=(201, 409))
    print(f"tenant {TENANT}: {'created' if status == 201 else 'exists'}")
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    for n, upn in enumerate(USERS):
        api("PUT", f"/v1/tenants/{TENANT}/users/{upn}", {"SipAddress": upn, "AudioEnabled": "false"})
        # Radicale (no authentication) takes the Basic user name as who is asking; a user may
        # create their own principal and calendar. 405: it exists already.
        dav = {"Authorization": "Basic " + base64.b64encode(f"{upn}:demo".encode()).decode()}
        request("MKCOL", f"{RADICALE}/{upn}/", headers=dav, ok=(201, 405))
        calendar = f"{RADICALE}/{upn}/calendar/"
        request("MKCALENDAR", calendar, headers=dav, ok=(201, 405))
        other = USERS[(n + 1) % len(USERS)]
        meetings = [
            ("teams-1", "Quarterly review", TEAMS_BLOCK, 2),
            ("teams-2", "Design sync", TEAMS_BLOCK, 5),
            ("sfb-1", "Release planning", SFB_BLOCK, 9),
            ("lunch", "Lunch", "", 3),
        ]
        for key, summary, block, days in meetings:
            uid = f"demo-{key}-{upn}"
            ics = invitation(uid, upn, other, now + datetime.timedelta(days=days), summary, block)
            request("PUT", f"{calendar}{key}.ics", ics, {**dav, "Content-Type": "text/calendar"})
        _, started = api("POST", f"/v1/tenants/{TENANT}/migrations",
                         {"Identity": upn, "TargetMeetingType": "Teams"})
        print(f"{upn}: 4 meetings on Radicale, migration started: {started}")
    print("seeded; watch it with: mmsctl --url http://localhost:8080 get-meeting-migration-status "
          "(updates arrive in Mailpit, http://localhost:8025; dashboard on http://localhost:3000)")


if __name__ == "__main__":
    sys.exit(main())
