#!/usr/bin/python3
"""test_http_limits: the HTTP endpoint (http.c, behind unsubscribe-server
and the metrics server) under attack, on 127.0.0.1 only.

- 40 slow clients from 127.0.0.1 (a request line, then one header byte
  every 2 s) try to hold every connection; meanwhile a normal request from
  another loopback address (127.0.0.2) is answered within a second, again
  and again; the slow ones are cut by the request deadline (10 s from the
  accept, however they drip);
- a POST announcing a body over 64 KiB gets 413 at once, its body unsent;
- with state.db write-locked (held by this test), a one-click POST waits
  at most busy_timeout and gets 503 while a GET (no database) is answered
  within a second; nothing is recorded; after the lock is gone the same
  POST records the opt-out;
- 30 requests with bad tokens give at most one log line, and their count
  reaches state.db's meta for the metrics;
- libmicrohttpd says nothing at start (its logger is the first option);
- a query string in [unsubscribe] url: `check` refuses it.
"""

import os
import re
import socket
import sqlite3
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

UNSUB = "https://unsub.acme.example/unsubscribe"
CUSTOMERS = [dict(id=1, email="ana@example.com", name="Ana",
                  first_name="Ana", locale="en-US", timezone="UTC",
                  birthday="1988-03-10")]
SLOW = 40


def request(port, raw, source="127.0.0.1", timeout=10):
    """(status or None, seconds): one raw HTTP request, its status line."""
    start = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(raw)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        data = b""
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return (int(m.group(1)) if m else None), time.monotonic() - start


def get(port, target, source="127.0.0.2"):
    return request(port, ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close"
                          "\r\n\r\n" % target).encode(), source)


def post(port, target, body="List-Unsubscribe=One-Click", timeout=30):
    return request(port, ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          "application/x-www-form-urlencoded\r\n"
                          "Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                          % (target, len(body), body)).encode(),
                   "127.0.0.2", timeout)


class Slow:
    """A slow client: the request line, then a header byte every 2 s.
    closed_after: seconds until the server closed it (None: still open)."""

    def __init__(self, port):
        self.start = time.monotonic()
        self.closed_after = None
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(5)
        try:
            self.s.bind(("127.0.0.1", 0))
            self.s.connect(("127.0.0.1", port))
            self.s.sendall(b"GET /unsubscribe HTTP/1.1\r\nHost: x\r\nX-A: ")
            self.s.setblocking(False)
        except OSError:
            self.closed_after = 0.0

    def drip(self):
        if self.closed_after is not None:
            return
        try:
            if self.s.recv(4096) == b"":
                raise OSError("closed")
        except BlockingIOError:
            pass
        except OSError:
            self.closed_after = time.monotonic() - self.start
            return
        try:
            self.s.send(b"a")
        except OSError:
            self.closed_after = time.monotonic() - self.start

    def close(self):
        self.s.close()


def slowloris(t, port, token):
    clients = [Slow(port) for _ in range(SLOW)]
    slow_answers = []
    try:
        end = time.monotonic() + 16
        while time.monotonic() < end:
            for c in clients:
                c.drip()
            code, secs = get(port, "/unsubscribe?t=" + token)
            slow_answers.append((code, round(secs, 2)))
            time.sleep(1.5)
    finally:
        for c in clients:
            c.close()
    held = [c.closed_after for c in clients]
    t.ok(all(code == 200 and secs < 1.0 for code, secs in slow_answers)
         and len(slow_answers) >= 6,
         "40 slow clients: every normal request answered 200 within 1 s",
         slow_answers)
    kept = [h for h in held if h is None or h > 2]
    t.ok(0 < len(kept) <= 8, "at most 8 connections kept from one address",
         held)
    t.ok(all(h is not None and h <= 14 for h in held),
         "the slow clients were cut by the request deadline (10 s), "
         "dripping or not", held)


def oversized(t, port):
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.settimeout(10)
    start = time.monotonic()
    s.sendall(b"POST /unsubscribe?t=x HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 10000000\r\n\r\n" + b"x" * 1000)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    s.close()
    secs = time.monotonic() - start
    t.ok(data.startswith(b"HTTP/1.1 413") and secs < 3,
         "a 10 MB body announced: 413 at once, unread (%.2f s)" % secs,
         data[:200])


def locked(t, env, port, token):
    db = sqlite3.connect(env.state, timeout=10, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    result = {}

    def do_post():
        result["post"] = post(port, "/unsubscribe?t=" + token)
    th = threading.Thread(target=do_post)
    th.start()
    try:
        time.sleep(0.3)
        code, secs = get(port, "/unsubscribe?t=" + token)
        t.ok(code == 200 and secs < 1.0,
             "state.db locked: a GET is answered within 1 s while a POST "
             "waits (%s, %.2f s)" % (code, secs))
        code, secs = get(port, "/nowhere")
        t.ok(code == 404 and secs < 1.0, "and so is a 404 (%s, %.2f s)" % (
            code, secs))
        th.join(30)
    finally:
        db.execute("ROLLBACK")
        db.close()
    code, secs = result.get("post", (None, 0))
    t.ok(code == 503 and secs < 10,
         "the POST that cannot record gets 503 (%s, %.2f s)" % (code, secs))
    t.eq(env.query("SELECT address FROM optouts"), [],
         "and nothing was recorded")
    code, _ = post(port, "/unsubscribe?t=" + token)
    t.eq(code, 200, "the lock gone, the same POST records")
    t.eq([r["address"] for r in env.query("SELECT address FROM optouts")],
         ["ana@example.com"], "the opt-out is there")


def rejected(t, env, port, stderr_path):
    for i in range(30):
        (post if i % 2 else get)(port,
                                 "/unsubscribe?t=forged%d.marketing.AAAA" % i)
    with open(stderr_path, encoding="utf-8", errors="replace") as f:
        lines = [x for x in f if "bad token" in x]
    t.ok(1 <= len(lines) <= 2, "30 bad tokens: at most 2 log lines "
         "(rate-limited)", "".join(lines))


def metrics(t, env, srv):
    """The daemon's /metrics shows the count."""
    mport = fx.closed_port()
    conf = env.write_config(port=srv.port, rule_checkin=None,
                            path=os.path.join(env.dir, "metrics.conf"),
                            rule_birthday={"kind": "birthday",
                                           "send_at": "09:00"},
                            unsubscribe={"url": UNSUB},
                            queue={"tick": "1h"},
                            extra_lines=["", "[metrics]", "enabled = yes",
                                         "listen = 127.0.0.1",
                                         "port = %d" % mport])
    p = env.spawn("-d", "run", conf=conf)
    text = ""
    try:
        def fetch():
            nonlocal text
            s = socket.socket()
            s.settimeout(10)
            try:
                s.connect(("127.0.0.1", mport))
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                text = data.decode("utf-8", "replace")
                return "HTTP/1.1 200" in text
            except OSError:
                return False
            finally:
                s.close()
        fx.wait_for(lambda: fetch() or p.poll() is not None, timeout=60)
    finally:
        fx.kill(p, fx.signal.SIGTERM)
    t.ok("\nfollowupd_unsubscribe_rejected_tokens_total 30\n" in text,
         "/metrics: followupd_unsubscribe_rejected_tokens_total 30", text)


def body(t):
    fx.require_binary(t)
    with fx.Env("http-limits") as env, fx.SmtpServer() as srv:
        port = fx.closed_port()
        env.make_source(customers=CUSTOMERS)
        env.write_config(port=srv.port, rule_checkin=None,
                         source={"busy_timeout": "2s"},
                         rule_birthday={"kind": "birthday", "send_at": "09:00"},
                         unsubscribe={"url": UNSUB, "port": str(port),
                                      "listen": "127.0.0.1"})
        env.once("2027-03-09 10:00:00")
        r = env.once("2027-03-10 10:00:00")
        t.eq(r.rc, 0, "birthday tick exits 0", r)
        url = None
        for _, msg in fx.received(srv):
            m = re.search(r"<(https://[^>]*)>", str(msg["List-Unsubscribe"]))
            url = m and m.group(1)
        t.ok(url, "the message has a one-click URL")
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(url or "").query
                                      ).get("t", [""])[0]
        token = urllib.parse.quote(token)

        errpath = os.path.join(env.dir, "spawned.stderr")
        proc = env.spawn("unsubscribe-server")
        try:
            t.ok(fx.wait_for(lambda: get(port, "/")[0] is not None, 30),
                 "unsubscribe-server answers")
            with open(errpath, encoding="utf-8", errors="replace") as f:
                start = f.read()
            t.ok(not re.search(r"^followupd: http: ", start, re.M), "libmicrohttpd says nothing at "
                 "start (its logger comes first)", start)
            oversized(t, port)
            slowloris(t, port, token)
            locked(t, env, port, token)
            rejected(t, env, port, errpath)
        finally:
            fx.kill(proc, fx.signal.SIGTERM)
        n = env.query("SELECT value FROM meta WHERE key = "
                      "'unsubscribe_rejected_tokens'")
        t.eq([int(x["value"]) for x in n], [30],
             "the 30 bad tokens are counted in state.db for the metrics")
        metrics(t, env, srv)

        env.write_config(port=srv.port, rule_checkin=None,
                         unsubscribe={"url": UNSUB + "?x=1",
                                      "port": str(port)})
        r = env.run("check")
        t.ok(r.rc != 0 and "without query" in r.stderr,
             "check refuses a query string in [unsubscribe] url", r)


if __name__ == "__main__":
    fx.main(body)
