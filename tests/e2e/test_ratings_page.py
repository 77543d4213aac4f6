#!/usr/bin/python3
"""test_ratings_page: the rating page of `followupd serve` over real HTTP.

A real check-in goes through the real binary to tests/smtp_server.py; the
rating tokens for its job are signed here, independently, with the queue's
unsubscribe.key (HMAC-SHA-256 as rating.h describes). Then, on 127.0.0.1:
- GET and HEAD show the page with the score preselected and record nothing;
- POST records the rating as typed, a second POST replaces it;
- forged, truncated and altered tokens get 400 (GET and POST);
- a token for an unknown job and a check-in past the window get 410, and
  a POST then records nothing;
- hostile input: a comment over 2,000 characters, bad percent-encoding,
  invalid UTF-8, NUL, a score the scale lacks, another content type, a
  body over the limit, another method;
- `unsubscribe-server` is still a name for `serve`;
- headless Chromium opens a link, picks a score, types a comment with
  <script> in it and submits: the thank-you page shows the comment as
  text, and state.db holds it as typed.
"""

import base64
import calendar
import hashlib
import hmac
import http.client
import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

RATE = "https://desk.acme.example/rate"
LETTER = {"csat": "c", "good-bad": "g", "nps": "n"}


def token(key, job, scale, score):
    """score None: the link of rating.url, which preselects nothing."""
    s = b"" if score is None else b"%d" % score
    msg = b"followupd-rating-v1\0%d\0%s\0%s" % (job, LETTER[scale].encode(),
                                                 s)
    mac = hmac.new(key, msg, hashlib.sha256).digest()
    return "%d.%s%s.%s" % (job, LETTER[scale], s.decode(),
                           base64.urlsafe_b64encode(mac).decode().rstrip("="))


def request(port, method, path, body=None, headers=None):
    """(status, text) of one request on a fresh connection."""
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


def post(port, tok, fields=None, raw=None, ctype=None):
    body = raw if raw is not None else urllib.parse.urlencode(fields or {})
    return request(port, "POST", "/rate?t=" + tok, body=body, headers={
        "Content-Type": ctype or "application/x-www-form-urlencoded"})


def ratings(env):
    return env.query("SELECT job_id, scale, score, comment FROM ratings "
                     "ORDER BY job_id")


def unsubscribe_module():
    """test_unsubscribe.py's Chromium driver (DevTools over a pipe)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "test_unsubscribe.py")
    spec = importlib.util.spec_from_file_location("t_unsub", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def chromium_rate(t, url, score, comment):
    """Open url, pick score, type comment, submit like a user; return the
    thank-you page's title and text, or None without Chromium."""
    import json
    import shutil
    import tempfile
    mod = unsubscribe_module()
    exe = shutil.which("chromium")
    if exe is None:
        return None
    profile = tempfile.mkdtemp(prefix="followupd-chromium.")
    cdp = mod.Cdp([exe, "--headless", "--no-sandbox", "--disable-gpu",
                   "--disable-quic", "--no-first-run",
                   "--disable-background-networking",
                   "--disable-component-update", "--disable-sync",
                   "--disable-extensions", "--disable-default-apps",
                   "--no-proxy-server", "--user-data-dir=" + profile,
                   "--remote-debugging-pipe", "about:blank"])
    try:
        target = cdp.call("Target.createTarget", url="about:blank")
        sess = cdp.call("Target.attachToTarget", targetId=target["targetId"],
                        flatten=True)["sessionId"]
        cdp.call("Page.enable", session=sess)
        cdp.call("Page.navigate", session=sess, url=url)
        cdp.wait_event("Page.loadEventFired")

        def box(elem_id):
            r = cdp.call("Runtime.evaluate", session=sess, returnByValue=True,
                         expression="(function(e) { e.scrollIntoView({block: "
                         "'center'}); return JSON.stringify("
                         "e.getBoundingClientRect()); })(document."
                         "getElementById('%s'))" % elem_id)
            b = json.loads(r["result"]["value"])
            return b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, b

        def click(elem_id):
            x, y, b = box(elem_id)
            for kind in ("mousePressed", "mouseReleased"):
                cdp.call("Input.dispatchMouseEvent", session=sess, type=kind,
                         x=x, y=y, button="left", clickCount=1)
            return b

        pre = cdp.call("Runtime.evaluate", session=sess, returnByValue=True,
                       expression="document.querySelector("
                       "'input[name=score]:checked').value")
        t.eq(pre["result"]["value"], "4",
             "chromium: the link's score is preselected")
        click("score-%d" % score)
        click("comment")
        cdp.call("Input.insertText", session=sess, text=comment)
        b = click("submit")
        t.ok(b["width"] > 0, "chromium: the Submit button is visible", b)
        cdp.wait_event("Page.loadEventFired")
        text = cdp.call("Runtime.evaluate", session=sess, returnByValue=True,
                        expression="document.title + '\\n' + "
                        "document.body.innerText + '\\n' + "
                        "document.getElementsByTagName('script').length")
        return text["result"]["value"]
    finally:
        cdp.close()
        shutil.rmtree(profile, ignore_errors=True)


def body(t):
    fx.require_binary(t)
    with fx.Env("ratings-page") as env, fx.SmtpServer() as srv:
        port = fx.closed_port()
        now = int(time.time())
        resolved = time.strftime("%Y-%m-%d %H:%M:%S",
                                 time.gmtime(now - 3 * 86400 - 3600))
        env.make_source(
            customers=[dict(id=1, email="ana@example.com", name="Ana",
                            first_name="Ana", timezone="UTC"),
                       dict(id=2, email="bo@example.com", name="Bo",
                            first_name="Bo", timezone="UTC")],
            agents=[dict(id=1, email="sam@acme.example", name="Sam",
                         timezone="UTC")],
            tickets=[dict(id=101 + i, customer_id=1 + i, agent_id=1,
                          subject="Ticket %d" % i, status="resolved",
                          created_at=resolved, resolved_at=resolved,
                          updated_at=resolved) for i in range(2)])
        env.write_config(port=srv.port,
                         unsubscribe={"port": str(port)},
                         ratings={"url": RATE, "window": "14d"},
                         rule_checkin={"send_window": None})
        r = env.once(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)))
        t.eq(r.rc, 0, "the check-ins' tick exits 0", r)
        sent = env.query("SELECT id, subject FROM jobs WHERE state = 'sent' "
                         "ORDER BY id")
        t.eq(len(sent), 2, "two check-ins sent")
        ana, bo = sent[0]["id"], sent[1]["id"]

        r = env.run("serve", "--help")
        t.ok(r.rc == 0 and "serve" in r.stdout, "serve --help", r)
        proc = env.spawn("serve")
        try:
            t.ok(fx.wait_for(lambda: os.path.exists(os.path.join(
                env.queue, "unsubscribe.key"))) and
                fx.wait_for(lambda: listening(port)),
                "serve listens on 127.0.0.1")
            with open(os.path.join(env.queue, "unsubscribe.key"), "rb") as f:
                key = f.read().split(b"\n")[0]
            tok = token(key, ana, "csat", 4)

            # GET and HEAD: a page, nothing recorded.
            code, page = request(port, "GET", "/rate?t=" + tok)
            t.eq(code, 200, "GET: 200")
            t.ok('<form method="post"' in page and
                 'value="4" checked' in page and 'name="comment"' in page and
                 'maxlength="2000"' in page and 'id="submit"' in page,
                 "GET: a form, score 4 preselected, a comment box", page)
            t.ok("Very satisfied" in page and "Very dissatisfied" in page,
                 "GET: every csat option with its label")
            t.ok("<script" not in page and "<img" not in page,
                 "GET: no script, no image (no tracking pixel)")
            code, page = request(port, "HEAD", "/rate?t=" + tok)
            t.eq((code, page), (200, ""), "HEAD: 200 without a body")
            t.eq(ratings(env), [], "GET and HEAD record nothing")

            # POST records; a second POST replaces.
            code, page = post(port, tok, {"score": "2",
                                          "comment": "Still <b>broken</b>"})
            t.eq(code, 200, "POST: 200")
            t.ok("Thank you" in page and
                 "Still &lt;b&gt;broken&lt;/b&gt;" in page and
                 "<b>broken" not in page,
                 "POST: a thank-you page, the comment escaped", page)
            t.eq(ratings(env), [dict(job_id=ana, scale="csat", score=2,
                                     comment="Still <b>broken</b>")],
                 "POST: the form's score and the comment, as typed")
            code, page = request(port, "GET", "/rate?t=" + tok)
            t.ok(code == 200 and "already" in page and "Dissatisfied" in page,
                 "GET after a rating: says what was rated", page)
            code, _ = post(port, tok, {"score": "5", "comment": ""})
            t.eq(code, 200, "a second POST: 200")
            t.eq(ratings(env), [dict(job_id=ana, scale="csat", score=5,
                                     comment=None)],
                 "the second POST replaces the first (one rating per job)")
            ev = [e["detail"] for e in env.events(ana)
                  if e["event"] == "rated"]
            t.eq(ev, ["csat 2, with a comment", "csat 5"],
                 "each rating is in the job's history, without the comment")
            code, _ = post(port, token(key, bo, "csat", 1), {})
            t.eq(code, 200, "a POST without fields takes the token's score")
            every = token(key, bo, "csat", None)
            code, page = request(port, "GET", "/rate?t=" + every)
            t.ok(code == 200 and " checked" not in page and
                 page.count('name="score"') == 5,
                 "rating.url's link: every option, none preselected", page)
            code, _ = post(port, every, {"comment": "no score"})
            t.eq(code, 400, "its POST without a score: 400")
            code, _ = post(port, every, {"score": "1"})
            t.eq(code, 200, "its POST with a score: 200")

            # Forged, truncated, altered.
            mac = tok.split(".")[2]
            other = token(b"x" * 64, ana, "csat", 4)
            for name, bad in (
                    ("a forged MAC", tok[:-2] + ("AA" if mac[-2:] != "AA"
                                                  else "BA")),
                    ("a truncated token", tok[:-5]),
                    ("another job with this MAC",
                     "%d.c4.%s" % (bo, mac)),
                    ("another score with this MAC",
                     "%d.c1.%s" % (ana, mac)),
                    ("another scale with this MAC",
                     "%d.n4.%s" % (ana, mac)),
                    ("another key's token", other),
                    ("no token", ""),
                    ("a padded MAC", tok + "=")):
                code, _ = request(port, "GET", "/rate?t=" +
                                  urllib.parse.quote(bad))
                t.eq(code, 400, "GET with %s: 400" % name)
                code, _ = post(port, urllib.parse.quote(bad), {"score": "1"})
                t.eq(code, 400, "POST with %s: 400" % name)
            code, _ = request(port, "POST", "/rate", body="score=1",
                              headers={"Content-Type":
                                       "application/x-www-form-urlencoded"})
            t.eq(code, 400, "POST without any t: 400")

            # Unknown job; the window is over.
            code, _ = request(port, "GET", "/rate?t=" + token(key, 999999,
                                                              "csat", 4))
            t.eq(code, 410, "a signed token of an unknown job: 410")
            db = sqlite3.connect(env.state, timeout=10)
            db.execute("UPDATE jobs SET sent_at = sent_at - 15 * 86400 "
                       "WHERE id = ?", (bo,))
            db.commit()
            db.close()
            code, page = request(port, "GET", "/rate?t=" +
                                 token(key, bo, "csat", 4))
            t.ok(code == 410 and "expired" in page,
                 "GET after the window: 410, the page says expired", page)
            code, page = post(port, token(key, bo, "csat", 4), {"score": "5"})
            t.eq(code, 410, "POST after the window: 410")
            t.eq([(x["job_id"], x["score"]) for x in ratings(env)],
                 [(ana, 5), (bo, 1)], "and nothing recorded")

            # Hostile input.
            before = ratings(env)
            for name, kw, want in (
                    ("a comment of 2,001 characters",
                     dict(fields={"score": "3", "comment": "é" * 2001}), 400),
                    ("bad percent-encoding",
                     dict(raw="score=3&comment=%ZZ"), 400),
                    ("a cut percent-escape", dict(raw="score=3&comment=%4"),
                     400),
                    ("invalid UTF-8", dict(raw="score=3&comment=%FF%FE"), 400),
                    ("a NUL", dict(raw="score=3&comment=a%00b"), 400),
                    ("a control character",
                     dict(raw="score=3&comment=a%1Bb"), 400),
                    ("score 6 on csat", dict(raw="score=6"), 400),
                    ("score 0 on csat", dict(raw="score=0"), 400),
                    ("a score with a sign", dict(raw="score=%2B3"), 400),
                    ("a JSON body",
                     dict(raw='{"score":3}', ctype="application/json"), 415),
                    ("a body over 64 KiB",
                     dict(raw="score=3&comment=" + "a" * 70000), 413)):
                code, _ = post(port, tok, **kw)
                t.eq(code, want, "POST with %s: %d" % (name, want))
            t.eq(ratings(env), before, "hostile POSTs record nothing")
            code, _ = post(port, tok, {"score": "3",
                                       "comment": "é\r\n" * 999 + "ab"})
            t.eq(code, 200, "a comment of exactly 2,000 characters: 200")
            got = ratings(env)[0]["comment"]
            t.ok(got is not None and len(got) == 2000 and "\r" not in got,
                 "kept whole, CRLF as LF", len(got or ""))
            code, _ = request(port, "GET", "/rate?t=" + "1.c4." + "A" * 5000)
            t.eq(code, 400, "a 5,000-character token: 400")
            code, _ = request(port, "GET", "/rate?t=%s&t=%s" % (
                tok, "forged"))
            t.ok(code in (200, 400), "a repeated t: one of them is checked "
                 "(%d)" % code)
            t.eq(ratings(env)[0]["score"], 3, "still nothing recorded by GETs")
            # The other scales: the token names its own.
            nps = token(key, ana, "nps", 9)
            code, page = request(port, "GET", "/rate?t=" + nps)
            t.ok(code == 200 and page.count('name="score"') == 11 and
                 'value="9" checked' in page and "not at all likely" in page,
                 "nps: eleven options, 9 preselected", page)
            code, _ = post(port, nps, {"score": "11"})
            t.eq(code, 400, "nps: 11 is not a score")
            code, _ = post(port, nps, {"score": "0", "comment": "meh"})
            t.eq((code, [(x["scale"], x["score"]) for x in ratings(env)
                         if x["job_id"] == ana]), (200, [("nps", 0)]),
                 "nps: 0 recorded on its scale")
            code, page = request(port, "GET", "/rate?t=" +
                                 token(key, ana, "good-bad", 1))
            t.ok(code == 200 and page.count('name="score"') == 2 and
                 ">Good" in page.replace("> Good", ">Good") and
                 'value="1" checked' in page, "good-bad: Bad and Good", page)
            for method in ("PUT", "DELETE"):
                code, _ = request(port, method, "/rate?t=" + tok)
                t.eq(code, 405, "%s: 405" % method)
            code, _ = request(port, "GET", "/rate/../unsubscribe?t=" + tok)
            t.ok(code in (400, 404), "another path: not the rating page")
        finally:
            fx.kill(proc, signal.SIGTERM)
        t.eq(proc.returncode, 0, "SIGTERM stops serve, exit 0")

        # The browser test needs an open window: reopen bo's and rerun.
        db = sqlite3.connect(env.state, timeout=10)
        db.execute("UPDATE jobs SET sent_at = ? WHERE id = ?", (now, bo))
        db.commit()
        db.close()
        proc = env.spawn("unsubscribe-server")
        try:
            t.ok(fx.wait_for(lambda: listening(port)),
                 "unsubscribe-server (serve's other name) listens")
            comment = 'Nope <script>alert("x")</script> & more'
            text = chromium_rate(t, "http://127.0.0.1:%d/rate?t=%s" % (
                port, token(key, bo, "csat", 4)), 2, comment)
            if text is None:
                t.ok(True, "# SKIP chromium not installed")
            else:
                t.ok(text.startswith("Thank you") and comment in text and
                     "Dissatisfied" in text and text.endswith("\n0"),
                     "chromium: the thank-you page shows the comment as "
                     "text (no script element)", text)
                t.eq([(x["job_id"], x["score"], x["comment"])
                      for x in ratings(env) if x["job_id"] == bo],
                     [(bo, 2, comment)], "chromium: stored as typed")
        finally:
            fx.kill(proc, signal.SIGTERM)
        t.eq(proc.returncode, 0, "SIGTERM stops it, exit 0")
        err = open(os.path.join(env.dir, "spawned.stderr"),
                   encoding="utf-8", errors="replace").read()
        t.ok("Nope" not in err and "broken" not in err,
             "comments never reach the log", err[-2000:])


if __name__ == "__main__":
    fx.main(body)
