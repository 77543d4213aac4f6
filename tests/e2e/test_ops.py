#!/usr/bin/python3
"""test_ops: operations: status/queue --json, hold/release, preview --html/--text/--sample,
log privacy, the daemon under a (simulated) systemd: sd_notify READY/WATCHDOG/STOPPING,
SIGHUP reload (bad config kept out, good one taken), the /metrics endpoint."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

EX_USAGE, EX_DATAERR, EX_NOINPUT = 64, 65, 66
R = "2026-11-02 10:00:00"
PASSWORD = "s3cret-Pa55-word"
USER = "followupd-test"


def rows():
    t = dict(status="resolved", created_at="2026-11-01 09:00:00",
             resolved_at=R, updated_at=R)
    return dict(
        customers=[
            dict(id=1, email="ana.garcia@example.com", name="Ana García",
                 first_name="Ana", timezone="Europe/Madrid"),
            dict(id=2, email="bob.stone@example.org", name="Bob Stone",
                 first_name="Bob"),
            dict(id=3, email="carla.diaz@example.net", name="Carla Díaz"),
            dict(id=4, email=None, name="No Mail"),
        ],
        agents=[dict(id=1, email="sam@acme.example", name="Sam Okafor")],
        tickets=[
            dict(id=10, customer_id=1, agent_id=1, subject="Printer offline",
                 **t),
            dict(id=11, customer_id=2, agent_id=1, subject="Refund", **t),
            dict(id=12, customer_id=3, agent_id=None, subject="Login", **t),
            dict(id=13, customer_id=4, agent_id=1, subject="No mail", **t),
        ])


def test_json_and_queue(t, env, srv):
    r = env.run("status", "--json")
    t.eq(r.rc, 0, "status --json on an empty queue", r)
    try:
        st = json.loads(r.stdout)
        t.ok(st["rules"] == {} and st["daemon"]["running"] is False and
             st["next_due"] is None, "empty status: no rules, no daemon",
             r.stdout)
    except ValueError as e:
        t.ok(False, "status --json is valid JSON", str(e), r.stdout)
    r = env.once("2026-11-02 12:00:00")
    t.eq(r.rc, 0, "planning tick", r)
    r = env.run("queue", "list", "--json")
    try:
        jobs = json.loads(r.stdout)
        t.eq(len(jobs), 4, "queue list --json: four planned jobs", r)
        t.ok(all(j["state"] == "planned" and isinstance(j["id"], int)
                 for j in jobs), "queue list --json: fields typed")
        t.eq(jobs[0]["due_at"], "2026-11-05T10:00:00Z",
             "queue list --json: times as RFC 3339 UTC")
    except ValueError as e:
        t.ok(False, "queue list --json is valid JSON", str(e), r.stdout)
    j10, j11 = env.job(10)["id"], env.job(11)["id"]
    r = env.run("queue", "hold", j10)
    t.ok(r.rc == 0 and "held" in r.stdout, "queue hold", r)
    t.eq(env.job(10)["state"], "held", "the job is held")
    r = env.run("queue", "hold", j10)
    t.ok(r.rc == EX_DATAERR, "holding twice is refused (65)", r)
    r = env.run("queue", "list", "--state", "held", "--rule", "checkin",
                "--json")
    t.eq([j["id"] for j in json.loads(r.stdout)], [j10],
         "queue list --state held --rule checkin: both filters apply", r)
    r = env.run("queue", "list", "--state", "held", "--rule", "other",
                "--json")
    t.eq(json.loads(r.stdout), [], "a --rule that matches nothing", r)

    # The relay refuses bob temporarily: deferred. A tick with the job
    # held sends nothing for it.
    srv.restart(faults=["rcpt:bob:451"])
    env.write_config(srv.port)
    r = env.once("2026-11-05 10:00:00")
    t.eq(r.rc, 0, "delivery tick", r)
    t.eq(env.job(10)["state"], "held", "a held job is not rendered")
    t.eq(env.job(11)["state"], "deferred", "bob deferred (451)")
    t.eq(env.job(12)["state"], "sent", "carla sent")
    r = env.run("status", "--json", "--now", "2026-11-05 10:30:00")
    try:
        st = json.loads(r.stdout)
        c = st["rules"]["checkin"]
        t.ok(c["held"] == 1 and c["deferred"] == 1 and c["sent"] == 1 and
             c["cancelled"] == 1, "status --json: counts per state", c)
        t.eq([d["job"] for d in st["deferred"]], [j11],
             "status --json: the deferred job")
        t.ok("451" in (st["deferred"][0]["last_reply"] or ""),
             "status --json: its last reply", st["deferred"])
        t.eq(st["delivered"], {"last_hour": 1, "last_day": 1},
             "status --json: deliveries in the last hour and day")
        t.ok(st["oldest_queued"]["job"] == j11 and
             st["oldest_queued"]["age_seconds"] == 1800,
             "status --json: oldest queued and its age", st["oldest_queued"])
        t.ok(any(x["reason"] == "no-address" for x in st["reasons"]),
             "status --json: reasons")
        t.eq(st["last_tick"], "2026-11-05T10:00:00Z", "status --json: last tick")
    except (ValueError, KeyError, TypeError, IndexError) as e:
        t.ok(False, "status --json has the expected shape", repr(e), r.stdout)
    r = env.run("status", "--now", "2026-11-05 10:30:00")
    t.ok(r.rc == 0 and "held" in r.stdout and "1 in the last hour" in
         r.stdout and "oldest waiting" in r.stdout and
         "daemon: not running" in r.stdout, "status (text)", r.describe(50))

    # --all-deferred: hold them all, release the held ones.
    r = env.run("queue", "hold", "--all-deferred")
    t.ok(r.rc == 0 and "1 deferred job" in r.stdout,
         "queue hold --all-deferred", r)
    t.eq(env.job(11)["state"], "held", "the deferred job is held")
    r = env.run("queue", "show", j11)
    t.ok(r.rc == 0 and "held" in r.stdout and "Message-ID:" in r.stdout,
         "queue show of a held job: history and message", r)
    r = env.run("queue", "release", "--all-deferred")
    t.eq(r.rc, EX_USAGE, "release takes --all-held, not --all-deferred")
    r = env.run("queue", "release", "--all-held")
    t.ok(r.rc == 0 and "2 held jobs" in r.stdout, "queue release --all-held",
         r)
    t.eq(env.job(10)["state"], "planned", "released: never rendered → planned")
    t.eq(env.job(11)["state"], "queued", "released: spooled → queued")
    r = env.run("queue", "retry", "--all-deferred")
    t.ok(r.rc == 0 and "0 deferred jobs" in r.stdout,
         "queue retry --all-deferred with none", r)
    r = env.run("queue", "frob", j11)
    t.eq(r.rc, EX_USAGE, "an unknown queue action is a usage error")
    srv.restart(faults=[])
    env.write_config(srv.port)
    r = env.once("2026-11-05 11:00:00")
    t.ok(env.job(10)["state"] == "sent" and env.job(11)["state"] == "sent",
         "after release both are delivered", r)
    r = env.run("queue", "cancel", "--all-deferred")
    t.ok(r.rc == 0, "queue cancel --all-deferred", r)


def test_preview(t, env, port):
    r = env.run("preview", "checkin", "10", "--html", "--now",
                "2026-11-05 10:00:00")
    t.eq(r.rc, 0, "preview --html exits 0", r)
    page = r.stdout
    t.ok(page.lstrip().lower().startswith("<!doctype html"),
         "preview --html is a page", page[:200])
    t.ok("followupd-preview" in page and "Subject:" in page and
         "Ana García &lt;ana.garcia@example.com&gt;" in page,
         "the headers are shown above the HTML part", page[:2000])
    t.ok(page.index("followupd-preview") > page.lower().index("<body"),
         "the header box is inside <body>")
    t.ok("Hi Ana," in page and "Printer offline" in page,
         "the HTML part follows")
    r = env.run("preview", "checkin", "10", "--text")
    t.ok(r.rc == 0 and r.stdout.startswith("Hi Ana,") and
         "Printer offline" in r.stdout and "Content-Type" not in r.stdout,
         "preview --text: the text part alone", r)
    r = env.run("preview", "checkin", "10", "--html", "--text")
    t.eq(r.rc, EX_USAGE, "--html and --text together is a usage error")

    r = env.run("preview", "checkin", "--sample", "10")
    t.ok(r.rc == 0 and "4 rows" in r.stdout and "3 rendered" in r.stdout and
         "1 would not be sent" in r.stdout and "no-address" in r.stdout,
         "preview --sample: rows rendered and refused", r)
    t.ok("agent.name" in r.stdout and "empty" in r.stdout,
         "preview --sample: an empty variable is reported (no agent)",
         r.stdout)
    r = env.run("preview", "checkin", "--sample", "2")
    t.ok(r.rc == 0 and "2 rows" in r.stdout, "--sample N stops at N rows", r)
    r = env.run("preview", "checkin", "--sample", "zero")
    t.eq(r.rc, EX_USAGE, "--sample needs a number")

    # A template typo: missing from every row's data.
    tdir = os.path.join(env.dir, "typo-templates")
    os.makedirs(os.path.join(tdir, "checkin"))
    os.symlink(os.path.join(fx.TEMPLATES, "partials"),
               os.path.join(tdir, "partials"))
    with open(os.path.join(tdir, "checkin", "subject.mustache"), "w") as f:
        f.write("About {{ticket.subjcet}}")
    with open(os.path.join(tdir, "checkin", "text.mustache"), "w") as f:
        f.write("Hi {{customer.first_name}}, {{ticket.subject}}\n")
    conf = env.write_config(port, path=os.path.join(env.dir, "typo.conf"),
                            templates={"dir": tdir})
    r = env.run("preview", "checkin", "--sample", "10", conf=conf, vg=True)
    t.eq(r.rc, EX_DATAERR, "a variable missing from every row exits 65", r)
    t.ok("ticket.subjcet" in r.stdout and "typo" in r.stdout and
         "[subject]" in r.stdout, "the typo is named, with its template",
         r.stdout)
    t.ok("customer.first_name" in r.stdout and "empty in 1 of 3" in r.stdout,
         "an empty first name in one row is reported", r.stdout)


def test_privacy(t, env):
    """Info-level logs name domains, never a mailbox, and never the password."""
    pwfile = os.path.join(env.dir, "smtp.password")
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, (PASSWORD + "\n").encode())
    os.close(fd)
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail-tls"), tls=True,
                        require_starttls=True, auth=(USER, PASSWORD),
                        faults=["rcpt:bob:550", "rcpt:carla:451"],
                        lifetime=300).start()
    try:
        conf = env.write_config(
            srv.port, path=os.path.join(env.dir, "tls.conf"),
            queue={"dir": "queue-tls"},
            smtp={"starttls": "required", "ca_file": srv.cert,
                  "username": USER, "password_file": pwfile})
        out = ""
        for now in ("2026-11-02 12:00:00", "2026-11-05 10:00:00"):
            r = env.run("once", "--now", now, conf=conf)
            t.eq(r.rc, 0, "once at %s (TLS + AUTH, faults)" % now, r)
            out += r.stdout + r.stderr
        t.ok("sent to @example.com" in out and "@example.org" in out and
             "@example.net" in out, "decisions name the domains", out)
        t.ok("550" in out and "451" in out, "server replies are logged", out)
        for addr in ("ana.garcia@", "bob.stone@", "carla.diaz@"):
            t.ok(addr not in out, "info logs never name %s…" % addr, out)
        t.ok(PASSWORD not in out, "the password is never logged")
        for line in out.splitlines():
            if "job " in line and ("sent" in line or "deferred" in line or
                                   "failed" in line):
                t.ok("checkin" in line, "a decision names its rule", line)
                break
        r = env.run("-v", "once", "--now", "2026-11-06 10:00:00", conf=conf)
        t.ok(PASSWORD not in r.stdout + r.stderr,
             "the password is not logged with -v either")
    finally:
        srv.stop()


# ---------------------------------------------------------------- the daemon

class Notify:
    """The service manager's end of sd_notify: a Unix datagram socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.got = []
        self.lock = threading.Lock()
        self.running = True
        # Like systemd, read all the time: a full socket blocks the sender.
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _reader(self):
        while self.running:
            try:
                m = self.sock.recv(4096).decode()
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            with self.lock:
                self.got.append(m)

    def messages(self, after=0):
        with self.lock:
            return list(self.got[after:])

    def wait(self, word, timeout=60, after=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages(after):
                if word in m.split("\n") or (word.endswith("=") and
                                              m.startswith(word)):
                    return True
            time.sleep(0.05)
        return False

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


def metrics_get(port, path="/metrics", method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers.get("Content-Type"), \
                resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def test_daemon(t, env, srv):
    mport = fx.closed_port()
    tdir = os.path.join(env.dir, "live-templates")
    os.makedirs(tdir)
    os.symlink(os.path.join(fx.TEMPLATES, "partials"),
               os.path.join(tdir, "partials"))
    os.symlink(os.path.join(fx.TEMPLATES, "checkin"),
               os.path.join(tdir, "checkin"))
    base = dict(queue={"dir": "queue-run", "tick": "1s"},
                templates={"dir": tdir},
                extra_lines=["", "[metrics]", "enabled = yes",
                             "listen = 127.0.0.1", "port = %d" % mport])
    conf = env.write_config(srv.port, path=os.path.join(env.dir, "run.conf"),
                            **base)
    env.desk("UPDATE tickets SET resolved_at = datetime('now', '-4 days'), "
             "updated_at = datetime('now') WHERE id IN (10, 11)")
    sockpath = os.path.join(env.dir, "notify.sock")
    note = Notify(sockpath)
    errpath = os.path.join(env.dir, "run.stderr")
    errf = open(errpath, "wb")
    penv = dict(os.environ, NOTIFY_SOCKET=sockpath, WATCHDOG_USEC="2000000")
    penv.pop("WATCHDOG_PID", None)
    p = subprocess.Popen([fx.BIN, "-c", conf, "-d", "run"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=errf, env=penv)
    errf.close()

    def log():
        with open(errpath, encoding="utf-8", errors="replace") as f:
            return f.read()
    try:
        t.ok(note.wait("READY=1"), "sd_notify: READY=1 arrives",
             note.messages())
        t.ok(note.wait("WATCHDOG=1"), "sd_notify: WATCHDOG=1 arrives")
        t.ok(note.wait("STATUS=", timeout=60), "sd_notify: a STATUS= line",
             note.messages())
        ok = fx.wait_for(lambda: len(srv.messages()) >= 2, timeout=60)
        t.ok(ok, "the daemon delivers on its own")
        # /metrics
        code, ctype, text = metrics_get(mport)
        t.ok(code == 200 and ctype.startswith("text/plain") and
             "version=0.0.4" in ctype, "GET /metrics: 200, Prometheus text",
             (code, ctype))
        for needle in ('followupd_jobs{rule="checkin",state="sent"} 2',
                       'followupd_messages_total{rule="checkin",'
                       'outcome="sent"} 2',
                       "followupd_delivery_latency_seconds_bucket{",
                       'le="+Inf"} 2',
                       "followupd_delivery_latency_seconds_count{",
                       "followupd_queue_oldest_age_seconds ",
                       'followupd_bounces_total{kind="hard",matched="no"} 0',
                       "followupd_last_tick_timestamp_seconds ",
                       "# TYPE followupd_messages_total counter",
                       "# TYPE followupd_delivery_latency_seconds histogram"):
            t.ok(needle in text, "metrics: %s" % needle, text)
        bad = [ln for ln in text.splitlines() if ln and not ln.startswith("#")
               and len(ln.rsplit(" ", 1)) != 2]
        t.eq(bad, [], "metrics: every sample line is NAME{LABELS} VALUE")
        code, _, _ = metrics_get(mport, "/nope")
        t.eq(code, 404, "metrics server: unknown path is 404")
        code, _, _ = metrics_get(mport, "/metrics", method="POST")
        t.eq(code, 405, "metrics server: POST /metrics is 405")
        r = env.run("status", "--json", conf=conf)
        st = json.loads(r.stdout)
        t.ok(st["daemon"]["running"] and st["daemon"]["pid"] == p.pid and
             st["daemon"]["uptime_seconds"] is not None,
             "status --json: the daemon's pid and uptime", st["daemon"])

        # SIGHUP with a broken config and a broken template: both errors
        # logged, the old ones kept, the daemon still running.
        with open(conf, "a") as f:
            f.write("\n[rule broken]\nkind = after_resolution\ndelay = soon\n")
        mark = len(note.messages())
        p.send_signal(signal.SIGHUP)
        t.ok(note.wait("RELOADING=1", after=mark) and
             note.wait("READY=1", after=mark), "reload: RELOADING=1 then "
             "READY=1")
        t.ok(fx.wait_for(lambda: "reload failed" in log(), timeout=60),
             "a bad reload is reported", log())
        t.ok("delay" in log() and "run.conf:" in log(),
             "the config error is logged with file:line", log())
        t.ok(p.poll() is None, "the daemon keeps running after a bad reload")
        # A template error too (the config is fine again).
        env.write_config(srv.port, path=conf, **base)
        newdir = os.path.join(tdir, "checkin.new")
        os.makedirs(newdir)
        for name in ("subject", "html"):
            os.symlink(os.path.join(fx.TEMPLATES, "checkin",
                                    name + ".mustache"),
                       os.path.join(newdir, name + ".mustache"))
        with open(os.path.join(newdir, "text.mustache"), "w") as f:
            f.write("RELOADED {{#ticket}} unclosed\n")
        os.unlink(os.path.join(tdir, "checkin"))
        os.rename(newdir, os.path.join(tdir, "checkin"))
        before = log().count("reload failed")
        p.send_signal(signal.SIGHUP)
        t.ok(fx.wait_for(lambda: log().count("reload failed") > before,
                         timeout=60), "a template error fails the reload")
        t.ok("text.mustache:1:" in log(), "the template error is logged "
             "with file:line", log())
        env.desk("UPDATE tickets SET resolved_at = datetime('now', "
                 "'-4 days', '+1 minute') WHERE id = 12")
        ok = fx.wait_for(lambda: len(srv.messages()) >= 3, timeout=60)
        t.ok(ok, "after a failed reload the old templates still work")
        msgs = fx.received(srv)
        t.ok(ok and "RELOADED" not in fx.body(msgs[-1][1], "plain"),
             "... and the message uses the old text")
        # Fix the template: the next reload takes it.
        with open(os.path.join(tdir, "checkin", "text.mustache"), "w") as f:
            f.write("RELOADED {{customer.first_name}}\n")
        n = log().count("daemon: reloaded")
        p.send_signal(signal.SIGHUP)
        t.ok(fx.wait_for(lambda: log().count("daemon: reloaded") > n,
                         timeout=60), "a good reload is logged", log())
        env.desk("UPDATE tickets SET resolved_at = datetime('now', "
                 "'-4 days', '+2 minutes') WHERE id = 10")
        ok = fx.wait_for(lambda: len(srv.messages()) >= 4, timeout=60)
        msgs = fx.received(srv)
        t.ok(ok and "RELOADED Ana" in fx.body(msgs[-1][1], "plain"),
             "after a good reload the new template is used")
        mark = len(note.messages())
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(60)
        except Exception:
            rc = None
            if os.environ.get("OPS_DEBUG"):
                subprocess.run(["gdb", "-batch", "-p", str(p.pid), "-ex",
                                "thread apply all bt"])
        t.eq(rc, 0, "SIGTERM: exit 0")
        t.ok(note.wait("STOPPING=1", after=mark, timeout=60),
             "sd_notify: STOPPING=1 at the end", note.messages(mark))
        t.ok("@" not in "".join(ln.split("Message-ID")[0] for ln in
                                log().splitlines()
                                if "@" in ln and "@example" not in ln
                                and "@acme.example" not in ln),
             "daemon log: no mailbox")
        for addr in ("ana.garcia@", "bob.stone@", "carla.diaz@"):
            t.ok(addr not in log(), "daemon log never names %s…" % addr)
    finally:
        fx.kill(p)
        note.close()


def body(t, env):
    fx.require_binary(t)
    env.make_source(**rows())
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                        lifetime=300).start()
    try:
        env.write_config(srv.port)
        test_json_and_queue(t, env, srv)
        test_preview(t, env, srv.port)
        test_privacy(t, env)
        srv2 = fx.SmtpServer(maildir=os.path.join(env.dir, "mail-run"),
                             lifetime=300).start()
        try:
            env.make_source(**rows())
            test_daemon(t, env, srv2)
        finally:
            srv2.stop()
        t.ok(env.source_unchanged(), "the source database was never written")
    finally:
        srv.stop()


if __name__ == "__main__":
    env = fx.Env("ops")
    try:
        fx.main(lambda t: body(t, env))
    finally:
        env.cleanup()
