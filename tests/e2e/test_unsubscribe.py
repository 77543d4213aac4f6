#!/usr/bin/python3
"""test_unsubscribe: `followupd unsubscribe-server` with real HTTP requests.

The token comes from a real message's List-Unsubscribe header. Then, on
127.0.0.1 only:
- curl GET: a confirmation page with a POST button; nothing recorded (mail
  scanners follow links);
- curl POST with a forged MAC, with the token of another address, with a
  truncated token: 400, nothing recorded;
- curl POST with a valid token but no List-Unsubscribe=One-Click: 400;
- the one-click POST a mail client makes (http.client, RFC 8058): 200 and
  the opt-out recorded with its class; a later message is cancelled
  opted-out;
- headless Chromium (Debian's chromium) opens the GET page and clicks the
  button: the click is a trusted mouse event at the button's position,
  sent over the DevTools protocol on --remote-debugging-pipe (no network
  port); the page that follows says so and the opt-out is recorded.
"""

import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

UNSUB = "https://unsub.acme.example/unsubscribe"
CUSTOMERS = [
    dict(id=1, email="Ana.Garcia@example.com", name="Ana García",
         first_name="Ana", locale="es-ES", timezone="UTC",
         birthday="1988-03-10"),
    dict(id=2, email="kai@example.com", name="Kai Nakamura", first_name="Kai",
         locale="en-US", timezone="UTC", birthday="1995-03-10"),
    dict(id=3, email="zoe@example.fr", name="Zoë", first_name="Zoë",
         locale="fr-FR", timezone="UTC", birthday="1992-03-10"),
]


def curl(*args):
    """(status, body) of a curl request; never a proxy, 10 s at most."""
    p = subprocess.run(["curl", "-s", "--noproxy", "*", "--max-time", "10",
                        "-o", "-", "-w", "\n%{http_code}"] + list(args),
                       capture_output=True, timeout=20)
    out = p.stdout.decode("utf-8", "replace")
    body, _, code = out.rpartition("\n")
    return int(code or 0), body


def optouts(env):
    return env.query("SELECT address, class, reason FROM optouts "
                     "ORDER BY address")


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def tokens(srv):
    """{recipient: List-Unsubscribe https URL} of every captured message."""
    out = {}
    for env, msg in fx.received(srv):
        lu = str(msg["List-Unsubscribe"] or "")
        m = re.search(r"<(https://[^>]*)>", lu)
        if m:
            out[env["rcpt_tos"][0]] = m.group(1)
    return out


def local(url, port):
    """The public https URL, as the local server sees it behind a proxy."""
    u = urllib.parse.urlsplit(url)
    return "http://127.0.0.1:%d%s?%s" % (port, u.path, u.query)


# ------------------------------------------------------------ Chromium

class Cdp:
    """A tiny DevTools-protocol client over --remote-debugging-pipe:
    JSON messages separated by NUL, we write fd 3 and read fd 4."""

    def __init__(self, argv, timeout=30):
        r3, w3 = os.pipe()
        r4, w4 = os.pipe()

        def child():
            # Move the pipe ends to 3 and 4 (via high numbers: no clash).
            a, b = os.dup(r3), os.dup(w4)
            a2, b2 = os.dup2(a, 100), os.dup2(b, 101)
            os.dup2(a2, 3, inheritable=True)
            os.dup2(b2, 4, inheritable=True)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     preexec_fn=child, close_fds=False)
        os.close(r3)
        os.close(w4)
        self.w, self.r = w3, r4
        self.buf = b""
        self.id = 0
        self.events = []
        self.deadline = time.monotonic() + timeout

    def _read(self):
        while b"\0" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium: no answer in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                data = os.read(self.r, 65536)
                if not data:
                    raise EOFError("chromium closed the pipe")
                self.buf += data
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method, session=None, **params):
        self.id += 1
        m = {"id": self.id, "method": method, "params": params}
        if session:
            m["sessionId"] = session
        os.write(self.w, json.dumps(m).encode() + b"\0")
        while True:
            msg = self._read()
            if msg.get("id") == self.id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method):
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read())

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.w)
        os.close(self.r)


def chromium_click(t, page_url):
    """Open page_url, click the Unsubscribe button like a user; return the
    text of the page that follows (None when Chromium is missing)."""
    exe = shutil.which("chromium")
    if exe is None:
        return None
    profile = tempfile.mkdtemp(prefix="followupd-chromium.")
    argv = [exe, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--disable-default-apps",
            "--no-proxy-server", "--user-data-dir=" + profile,
            "--remote-debugging-pipe", "about:blank"]
    cdp = Cdp(argv)
    try:
        target = cdp.call("Target.createTarget", url="about:blank")
        sess = cdp.call("Target.attachToTarget", targetId=target["targetId"],
                        flatten=True)["sessionId"]
        cdp.call("Page.enable", session=sess)
        cdp.call("Page.navigate", session=sess, url=page_url)
        cdp.wait_event("Page.loadEventFired")
        rect = cdp.call("Runtime.evaluate", session=sess, returnByValue=True,
                        expression="JSON.stringify(document.getElementById("
                        "'unsubscribe').getBoundingClientRect())")
        box = json.loads(rect["result"]["value"])
        x = box["x"] + box["width"] / 2
        y = box["y"] + box["height"] / 2
        t.ok(box["width"] > 0 and box["height"] > 0,
             "chromium: the Unsubscribe button is visible", box)
        for kind in ("mousePressed", "mouseReleased"):
            cdp.call("Input.dispatchMouseEvent", session=sess, type=kind,
                     x=x, y=y, button="left", clickCount=1)
        cdp.wait_event("Page.loadEventFired")
        text = cdp.call("Runtime.evaluate", session=sess, returnByValue=True,
                        expression="document.title + '\\n' + "
                        "document.body.innerText")
        return text["result"]["value"]
    finally:
        cdp.close()
        shutil.rmtree(profile, ignore_errors=True)


def body(t):
    fx.require_binary(t)
    with fx.Env("unsubscribe") as env, fx.SmtpServer() as srv:
        port = fx.closed_port()
        env.make_source(customers=CUSTOMERS)
        env.write_config(port=srv.port, rule_checkin=None,
                         rule_birthday={"kind": "birthday", "send_at": "09:00"},
                         unsubscribe={"url": UNSUB, "port": str(port),
                                      "listen": "127.0.0.1"})
        env.once("2027-03-09 10:00:00")
        r = env.once("2027-03-10 10:00:00")
        t.eq(r.rc, 0, "birthday tick exits 0", r)
        urls = tokens(srv)
        t.eq(sorted(urls), ["Ana.Garcia@example.com", "kai@example.com",
                            "zoe@example.fr"],
             "three messages, each with a one-click URL")
        key = os.path.join(env.queue, "unsubscribe.key")
        t.ok(os.path.exists(key) and fx.mode(key) == 0o600,
             "the secret was created 0600 in the queue directory")

        proc = env.spawn("unsubscribe-server")
        try:
            t.ok(wait_port(port), "unsubscribe-server listens on 127.0.0.1")
            ana = local(urls["Ana.Garcia@example.com"], port)
            token = urllib.parse.parse_qs(
                urllib.parse.urlsplit(ana).query)["t"][0]

            code, page = curl(ana)
            t.eq(code, 200, "GET: 200")
            t.ok('<form method="post"' in page and
                 'name="List-Unsubscribe" value="One-Click"' in page and
                 "<button" in page, "GET: a form whose button POSTs "
                 "List-Unsubscribe=One-Click", page)
            t.ok("a…@example.com" in page,
                 "GET: the address is shown masked", page)
            t.eq(optouts(env), [], "GET alone records nothing")
            curl("-I", ana)
            t.eq(optouts(env), [], "HEAD records nothing either")

            addr, cls, mac = token.split(".")
            forged = "%s.%s.%s" % (addr, cls, mac[:-2] +
                                   ("AA" if mac[-2:] != "AA" else "BA"))
            import base64
            other = base64.urlsafe_b64encode(
                b"victim@example.com").decode().rstrip("=")
            for name, tok in (("a forged MAC", forged),
                              ("another address, same MAC",
                               "%s.%s.%s" % (other, cls, mac)),
                              ("a truncated token", token[:-10]),
                              ("the class changed",
                               "%s.all.%s" % (addr, mac))):
                code, _ = curl("-X", "POST", "-d",
                               "List-Unsubscribe=One-Click",
                               "http://127.0.0.1:%d/unsubscribe?t=%s" % (
                                   port, urllib.parse.quote(tok)))
                t.eq(code, 400, "POST with %s: 400" % name)
                code, _ = curl("http://127.0.0.1:%d/unsubscribe?t=%s" % (
                    port, urllib.parse.quote(tok)))
                t.eq(code, 400, "GET with %s: 400" % name)
            t.eq(optouts(env), [], "bad tokens record nothing")
            code, _ = curl("-X", "POST", "-d", "foo=bar", ana)
            t.eq(code, 400, "POST without List-Unsubscribe=One-Click: 400")
            t.eq(optouts(env), [], "and records nothing")
            code, _ = curl("http://127.0.0.1:%d/other" % port)
            t.eq(code, 404, "another path: 404")

            # What a mail client does (RFC 8058 3.2).
            u = urllib.parse.urlsplit(ana)
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("POST", "%s?%s" % (u.path, u.query),
                      body="List-Unsubscribe=One-Click",
                      headers={"Content-Type":
                               "application/x-www-form-urlencoded"})
            resp = c.getresponse()
            resp.read()
            c.close()
            t.eq(resp.status, 200, "one-click POST: 200")
            got = optouts(env)
            t.eq([(o["address"], o["class"]) for o in got],
                 [("ana.garcia@example.com", "marketing")],
                 "one-click POST recorded the marketing opt-out")
            t.ok(got and "one-click" in (got[0]["reason"] or ""),
                 "with its reason", got)
            code, _ = curl("-X", "POST", "-d", "List-Unsubscribe=One-Click",
                           ana)
            t.eq(code, 200, "a second POST is fine (idempotent)")

            # A person in a browser: Chromium clicks the button.
            kai = local(urls["kai@example.com"], port)
            text = chromium_click(t, kai)
            if text is None:
                t.ok(True, "# SKIP chromium not installed")
            else:
                t.ok("You are unsubscribed" in text,
                     "chromium: the click leads to the confirmation", text)
                t.ok(("kai@example.com", "marketing") in
                     [(o["address"], o["class"]) for o in optouts(env)],
                     "chromium: the click recorded the opt-out")
            t.ok(("zoe@example.fr", "marketing") not in
                 [(o["address"], o["class"]) for o in optouts(env)],
                 "the others are untouched")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(10)
            except subprocess.TimeoutExpired:
                fx.kill(proc)
                rc = None
        t.eq(rc, 0, "SIGTERM stops unsubscribe-server, exit 0")

        # A year later the opted-out customers get nothing.
        env.once("2028-03-09 10:00:00")
        env.once("2028-03-10 10:00:00")
        jobs = env.query("SELECT email, state, reason FROM jobs WHERE "
                         "occurrence = '2028' ORDER BY email")
        t.eq([(j["email"], j["state"], j["reason"]) for j in jobs],
             [("Ana.Garcia@example.com", "cancelled", "opted-out"),
              ("kai@example.com", "cancelled", "opted-out"),
              ("zoe@example.fr", "sent", None)],
             "2028: the two who unsubscribed are not mailed")


if __name__ == "__main__":
    fx.main(body)
