#!/usr/bin/python3
"""test_ratings: rating links from check-in to call-back, end to end.

The real binary, tests/smtp_server.py and `followupd serve` on 127.0.0.1:
- a check-in of a rule with `ratings = yes` carries the options as buttons
  in its HTML part and as plain links in its text part; the link is taken
  from the delivered message;
- GET records nothing, POST records, a second POST replaces;
- the next tick puts a call-back in the agent's calendar (an iTIP REQUEST
  parsed with python3-icalendar: the customer and rating in SUMMARY, the
  comment and the ticket link in DESCRIPTION, DTSTART at the next opening
  of the working hours in the agent's zone) and mails the team lead a note;
- a better rating replaces it: the call-back is cancelled (same UID,
  SEQUENCE + 1);
- a customer asked within the cool-down gets a check-in without the
  block; sampling asks exactly the jobs the hash picks;
- `followupd report --json` and `--csv` give the figures of this known set,
  and `why` shows the rating.
"""

import datetime
import os
import re
import signal
import sys
import time
import urllib.parse
import http.client
import json
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

RATE = "https://desk.acme.example/rate"
LINK = "https://desk.acme.example/tickets/{{ticket.id}}"
LEAD = "lead@acme.example"
AGENT = "sam@acme.example"
AGENT_TZ = "America/New_York"


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def listening(port):
    try:
        return request(port, "GET", "/")[0] == 404
    except OSError:
        return False


def post(port, path, fields):
    return request(port, "POST", path, body=urllib.parse.urlencode(fields),
                   headers={"Content-Type":
                            "application/x-www-form-urlencoded"})


def local_path(url):
    u = urllib.parse.urlsplit(url)
    return "%s?%s" % (u.path, u.query)


def sampled(job, percent):
    """rating.c's rating_sampled, independently."""
    m = (1 << 64) - 1
    x = (job + 0x9E3779B97F4A7C15) & m
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
    x ^= x >> 31
    return x % 10000 < percent * 100


def when(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def customers(n):
    return [dict(id=i, email="c%d@example.com" % i, name="Customer %d" % i,
                 first_name="C%d" % i, timezone="UTC") for i in range(1, n + 1)]


def ticket(tid, cust, resolved):
    return dict(id=tid, customer_id=cust, agent_id=1,
                subject="Ticket %d <b>" % tid, status="resolved",
                created_at=resolved, resolved_at=resolved, updated_at=resolved)


def by_rcpt(srv):
    return fx.by_recipient(srv)


def body(t):
    fx.require_binary(t)
    now = int(time.time())
    resolved = when(now - 3 * 86400 - 3600)
    with fx.Env("ratings") as env, fx.SmtpServer() as srv:
        port = fx.closed_port()
        env.make_source(customers=customers(4),
                        agents=[dict(id=1, email=AGENT, name="Sam Okafor",
                                     timezone=AGENT_TZ)],
                        tickets=[ticket(100 + i, i, resolved)
                                 for i in range(1, 4)])
        env.write_config(port=srv.port, unsubscribe={"port": str(port)},
                         calendar={"link": LINK},
                         ratings={"url": RATE, "notify": LEAD},
                         rule_checkin={"ratings": "yes"})
        r = env.run("check")
        t.eq(r.rc, 0, "check accepts the ratings config", r)
        r = env.once(when(now))
        t.eq(r.rc, 0, "the check-ins' tick exits 0", r)
        mail = by_rcpt(srv)
        t.eq(sorted(mail), ["c1@example.com", "c2@example.com",
                            "c3@example.com"], "three check-ins")
        msg = mail["c1@example.com"][0][1]
        html = fx.body(msg, "html")
        text = fx.body(msg, "plain")
        links = re.findall(r'<a href="(https://desk\.acme\.example/rate'
                           r'\?t=[^"]+)"[^>]*>([^<]+)</a>', html)
        t.eq([lbl for _, lbl in links],
             ["Very dissatisfied", "Dissatisfied",
              "Neither satisfied nor dissatisfied", "Satisfied",
              "Very satisfied"], "HTML: five buttons with their labels")
        t.ok("How satisfied are you" in html and
             "How satisfied are you" in text, "the question in both parts")
        t.ok(all(u in text for u, _ in links) and
             "Dissatisfied: https://desk.acme.example/rate?t=" in text,
             "text: the same links, plain", text)
        t.eq(fx.defects(msg), [], "the message parses without defects")
        asked = env.query("SELECT job_id, agent, customer_name FROM "
                          "rating_requests ORDER BY job_id")
        t.eq([(a["agent"], a["customer_name"]) for a in asked],
             [(AGENT, "Customer %d" % i) for i in range(1, 4)],
             "three rating requests, with agent and customer")
        c1job = env.job(101)["id"]

        proc = env.spawn("serve")
        try:
            t.ok(fx.wait_for(lambda: listening(port)), "serve listens")
            low = local_path(links[1][0])
            code, page = request(port, "GET", low)
            t.ok(code == 200 and 'value="2" checked' in page,
                 "GET of the link: the page, score 2 preselected")
            t.eq(env.query("SELECT count(*) AS n FROM ratings")[0]["n"], 0,
                 "GET records nothing")
            comment = "It broke again <script>x</script>\nPlease call"
            code, _ = post(port, low, {"score": "2", "comment": comment})
            t.eq(code, 200, "POST: 200")
            t.eq([(x["score"], x["comment"]) for x in env.query(
                "SELECT score, comment FROM ratings")], [(2, comment)],
                "POST records the rating as typed")
            # c2 is happy, c3 does not answer.
            msg2 = mail["c2@example.com"][0][1]
            top = re.findall(r'href="(https://[^"]+)"[^>]*>Very satisfied<',
                             fx.body(msg2, "html"))
            code, _ = post(port, local_path(top[0]), {})
            t.eq(code, 200, "another customer rates 5")

            # The next tick: call-back and note.
            before = len(fx.received(srv))
            r = env.once(when(now + 60))
            t.eq(r.rc, 0, "the next tick exits 0", r)
            got = fx.received(srv)[before:]
            to = {e["rcpt_tos"][0]: m for e, m in got}
            t.eq(sorted(to), [LEAD, AGENT], "a call-back to the agent and a "
                 "note to the lead")
            cal = fx.calendar_parts(to.get(AGENT, msg))
            t.eq([m for m, _ in cal], ["REQUEST"], "the call-back is an "
                 "iTIP REQUEST")
            if cal:
                c, zones, events = fx.parse_ics(cal[0][1])
                ev = events[0] if events else {}
                summary = str(ev.get("SUMMARY", ""))
                desc = str(ev.get("DESCRIPTION", ""))
                t.ok("Customer 1" in summary and "Dissatisfied" in summary,
                     "SUMMARY names the customer and the rating", summary)
                t.ok("It broke again <script>x</script>" in desc and
                     "https://desk.acme.example/tickets/101" in desc,
                     "DESCRIPTION holds the comment and the ticket link",
                     desc)
                start, tzid = fx.event_instant(ev, "DTSTART", zones)
                loc = datetime.datetime.fromtimestamp(
                    start, zoneinfo.ZoneInfo(AGENT_TZ))
                t.ok(tzid == AGENT_TZ and loc.weekday() < 5 and
                     9 <= loc.hour < 17 and start >= now + 60 - 1 and
                     start <= now + 4 * 86400,
                     "DTSTART within the agent's working hours "
                     "(Mon-Fri 09:00-17:00 %s), not before now" % AGENT_TZ,
                     loc)
                uid = str(ev.get("UID", ""))
                t.eq(str(ev.get("ATTENDEE", "")).lower(),
                     "mailto:" + AGENT, "the agent is the attendee")
            note = to.get(LEAD)
            ntext = fx.body(note, "plain") if note else ""
            t.ok(note is not None and "Customer 1" in str(note["Subject"]) and
                 "Dissatisfied" in str(note["Subject"]) and
                 "It broke again <script>" in ntext and AGENT in ntext and
                 "101" in ntext, "the note: rating, comment, ticket, agent",
                 ntext)
            t.ok(note is not None and "\n" not in str(note["Subject"]),
                 "the note's subject is one line")

            # A better rating replaces it: the call-back is cancelled.
            code, _ = post(port, low, {"score": "4", "comment": "Fixed now"})
            t.eq(code, 200, "a second POST: 200")
            before = len(fx.received(srv))
            r = env.once(when(now + 120))
            got = fx.received(srv)[before:]
            t.eq([e["rcpt_tos"][0] for e, _ in got], [AGENT],
                 "only the agent hears of it (no note for a good rating)")
            if got and cal:
                cal2 = fx.calendar_parts(got[0][1])
                t.eq([m for m, _ in cal2], ["CANCEL"], "a CANCEL")
                c, zones, events = fx.parse_ics(cal2[0][1])
                t.ok(events and str(events[0].get("UID")) == uid and
                     int(events[0].get("SEQUENCE")) == 1,
                     "same UID, SEQUENCE 1")
            r = env.once(when(now + 180))
            t.eq(len(fx.received(srv)), before + 1,
                 "a handled rating is acted on once")
        finally:
            fx.kill(proc, signal.SIGTERM)

        # Cool-down: c1 has another ticket resolved; c4 a first one.
        later = when(now + 200 - 3 * 86400 - 3600)
        env.desk("INSERT INTO tickets (id, customer_id, agent_id, subject, "
                 "status, created_at, resolved_at, updated_at) VALUES "
                 "(201, 1, 1, 'Second', 'resolved', ?1, ?1, ?1)", (later,))
        env.desk("INSERT INTO tickets (id, customer_id, agent_id, subject, "
                 "status, created_at, resolved_at, updated_at) VALUES "
                 "(204, 4, 1, 'First', 'resolved', ?1, ?1, ?1)", (later,))
        before = len(fx.received(srv))
        r = env.once(when(now + 300))
        got = {e["rcpt_tos"][0]: m for e, m in fx.received(srv)[before:]}
        t.eq(sorted(got), ["c1@example.com", "c4@example.com"],
             "two more check-ins")
        t.ok("/rate?t=" not in fx.body(got.get("c1@example.com", msg),
                                        "plain") and
             "rating" not in fx.body(got.get("c1@example.com", msg), "html"),
             "c1, asked within the cool-down: no rating block")
        t.ok("/rate?t=" in fx.body(got.get("c4@example.com", msg), "plain"),
             "c4, never asked: the block")
        ev = [e["detail"] for e in env.events(env.job(201)["id"])
              if e["event"] == "rating-skipped"]
        t.eq(ev, ["asked within [ratings] cooldown"],
             "the history says why c1 was not asked")

        # The report of this known set: 4 requests, 2 responses, CSAT 100
        # (a 4 and a 5), no low rating left.
        r = env.run("report", "--json", "--now", when(now + 400))
        t.eq(r.rc, 0, "report --json exits 0", r)
        try:
            rep = json.loads(r.stdout)
        except ValueError:
            rep = {}
        t.eq((rep.get("requests"), rep.get("responses"),
              rep.get("response_rate"), rep.get("score"), rep.get("low")),
             (4, 2, 50.0, 100.0, []), "report: requests, responses, rate, "
             "CSAT, low", r.stdout)
        t.eq([(a["agent"], a["responses"], a["score"])
              for a in rep.get("by_agent", [])], [(AGENT, 2, 100.0)],
             "report: by_agent")
        r = env.run("report", "--csv", "--by", "rule", "--now",
                    when(now + 400))
        t.eq(r.stdout, '"rule","requests","responses","response_rate",'
             '"CSAT"\n"checkin",4,2,50.0,"100.0%"\n"total",4,2,50.0,'
             '"100.0%"\n', "report --csv --by rule")
        r = env.run("why", "c1@example.com")
        t.ok(r.rc == 0 and "rated" in r.stdout, "why shows the rating",
             r.stdout)
        r = env.run("queue", "show", str(c1job))
        t.ok(r.rc == 0 and "rated: csat 2, with a comment" in r.stdout and
             "rated: csat 4" in r.stdout and "rating-asked" in r.stdout,
             "queue show: the request and each rating in the history",
             r.stdout)

        # The metrics of the daemon: every rating given, by rule.
        mport = fx.closed_port()
        conf = env.write_config(port=srv.port,
                                path=os.path.join(env.dir, "run.conf"),
                                unsubscribe={"port": str(port)},
                                ratings={"url": RATE, "notify": LEAD},
                                rule_checkin={"ratings": "yes"},
                                queue={"tick": "1h"},
                                extra_lines=["", "[metrics]", "enabled = yes",
                                             "port = %d" % mport])
        proc = env.spawn("-d", "run", conf=conf)
        try:
            def scrape():
                try:
                    c = http.client.HTTPConnection("127.0.0.1", mport,
                                                   timeout=5)
                    c.request("GET", "/metrics")
                    return c.getresponse().read().decode()
                except OSError:
                    return ""
            text = fx.wait_for(scrape, timeout=20)
            for needle in ('followupd_ratings_total{rule="checkin",'
                           'rating="2"} 1',
                           'followupd_ratings_total{rule="checkin",'
                           'rating="4"} 1',
                           'followupd_ratings_total{rule="checkin",'
                           'rating="5"} 1',
                           "# TYPE followupd_ratings_total counter"):
                t.ok(needle in text, "metrics: %s" % needle, text[-1500:])
        finally:
            fx.kill(proc, signal.SIGTERM)

    # Sampling: 40 check-ins at 50%: exactly the jobs the hash picks.
    with fx.Env("ratings-sample") as env, fx.SmtpServer() as srv:
        env.make_source(customers=customers(40),
                        agents=[dict(id=1, email=AGENT, name="Sam",
                                     timezone="UTC")],
                        tickets=[ticket(100 + i, i, resolved)
                                 for i in range(1, 41)])
        env.write_config(port=srv.port, ratings={"url": RATE,
                                                 "sample": "50%"},
                         rule_checkin={"ratings": "yes"})
        r = env.once(when(now))
        t.eq(r.rc, 0, "the sampling tick exits 0", r)
        jobs = {j["recipient"]: j["id"] for j in env.jobs()}
        got = {e["rcpt_tos"][0]: "/rate?t=" in fx.body(m, "plain")
               for e, m in fx.received(srv)}
        want = {a: sampled(j, 50) for a, j in jobs.items()}
        t.eq(got, want, "sample 50%: the jobs the hash picks ask")
        t.ok(5 < sum(want.values()) < 35, "and about half of them",
             sum(want.values()))


if __name__ == "__main__":
    fx.main(body)
