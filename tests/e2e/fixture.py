"""fixture: shared helpers for the end-to-end tests (run with /usr/bin/python3).

An end-to-end test drives the real binary ($BUILD/followupd, BUILD defaults
to "build") against a help-desk database it builds itself and the real SMTP
capture server (tests/smtp_server.py), and speaks TAP:

    import fixture as fx
    t = fx.Tap()
    env = fx.Env("checkin")                 # a fresh temporary directory
    env.make_source(customers=[{...}], tickets=[{...}])
    env.write_config(port=srv.port)         # scheduler.conf next to the db
    r = env.once("2026-11-05 10:00:00")     # followupd -c … once --now …
    t.eq(r.rc, 0, "once exits 0", r)
    jobs = env.jobs()                       # state.db, read-only
    sys.exit(t.done())

Nothing here talks to any address but 127.0.0.1. KEEP=1 keeps the
temporary directory (its path is printed as a TAP diagnostic). VALGRIND=1
(set by `make valgrind`) runs the followupd invocations a test marks with
vg=True under valgrind; any error or definite leak fails that run.
"""

import calendar
import email
import email.policy
import hashlib
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD", "build")
BIN = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
BIN = os.path.join(BIN, "followupd")
SEED = os.path.join(ROOT, "demo", "seed.sql")
TEMPLATES = os.path.join(ROOT, "templates")
VALGRIND = os.environ.get("VALGRIND", "0") == "1"

sys.path.insert(0, os.path.join(ROOT, "tests"))
import smtp_server  # noqa: E402  (tests/smtp_server.py)
from smtp_server import SmtpServer, make_cert  # noqa: E402,F401

SENDER = "support@acme.example"
FROM = "Acme Support <support@acme.example>"
REPLY_TO = "help@acme.example"


# ------------------------------------------------------------------ TAP

class Tap:
    """TAP output: ok / not ok lines, diagnostics, the plan at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        sys.stdout.reconfigure(line_buffering=True)

    def ok(self, cond, desc, *diag):
        self.n += 1
        desc = desc.replace("\n", " ").replace("#", "\\#")
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, desc))
        if not cond:
            self.failed += 1
            for d in diag:
                self.diag(d)
        return bool(cond)

    def eq(self, got, expected, desc, *diag):
        return self.ok(got == expected, desc,
                       "expected: %r" % (expected,), "got:      %r" % (got,),
                       *diag)

    def diag(self, obj):
        if obj is None:
            return
        if isinstance(obj, Result):
            obj = obj.describe()
        for line in str(obj).splitlines() or [""]:
            print("#   " + line)

    def note(self, msg):
        for line in str(msg).splitlines():
            print("# " + line)

    def done(self):
        print("1..%d" % self.n)
        if self.failed:
            print("# %d of %d failed" % (self.failed, self.n))
        return 1 if self.failed else 0


def main(body):
    """Run body(tap) and exit with TAP's status; an unexpected exception
    is a failed test with its traceback as diagnostics."""
    t = Tap()
    try:
        body(t)
    except Exception:
        t.ok(False, "no unexpected exception", traceback.format_exc())
    sys.exit(t.done())


# ------------------------------------------------------------------ times

def unix(text):
    """'YYYY-MM-DD HH:MM:SS' (UTC) → Unix time."""
    return calendar.timegm(time.strptime(text.replace("T", " ").rstrip("Z"),
                                         "%Y-%m-%d %H:%M:%S"))


def sqltime(t):
    """Unix time → 'YYYY-MM-DD HH:MM:SS' (UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def closed_port():
    """A 127.0.0.1 port nobody listens on (bound, then closed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------ runs

class Result:
    def __init__(self, argv, rc, stdout, stderr, seconds):
        self.argv = argv
        self.rc = rc            # None: killed after the timeout
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds

    def describe(self, lines=25):
        out = ["command: %s" % " ".join(self.argv),
               "exit:    %s (%.1f s)" % (
                   "TIMEOUT" if self.rc is None else self.rc, self.seconds)]
        for name, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            tail = text.splitlines()[-lines:]
            if tail:
                out.append("%s (last %d lines):" % (name, len(tail)))
                out += ["  " + x for x in tail]
        return "\n".join(out)


def valgrind_prefix():
    supp = os.path.join(ROOT, "tests", "valgrind.supp")
    return ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--suppressions=" + supp]


# ------------------------------------------------------------------ env

class Env:
    """A temporary directory holding one help-desk database (helpdesk.db),
    one or more configs and the queue (queue/, state.db inside)."""

    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix="followupd-%s." % name)
        self.source = os.path.join(self.dir, "helpdesk.db")
        self.queue = os.path.join(self.dir, "queue")
        self.state = os.path.join(self.queue, "state.db")
        self.conf = os.path.join(self.dir, "scheduler.conf")
        self.log = open(os.path.join(self.dir, "followupd.log"), "a",
                        encoding="utf-8")
        self._fingerprint = None
        if os.environ.get("KEEP") == "1":
            print("# keeping %s" % self.dir)

    def cleanup(self):
        self.log.close()
        if os.environ.get("KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # -------------------------------------------------------- the source

    def make_source(self, customers=(), agents=(), tickets=(), purchases=(),
                    demo_data=False):
        """Create helpdesk.db with the reference schema of demo/seed.sql and
        these rows (dicts: column → value; missing columns are NULL). With
        demo_data the seed's own rows are kept too."""
        if os.path.exists(self.source):
            os.unlink(self.source)
        db = sqlite3.connect(self.source)
        with open(SEED, encoding="utf-8") as f:
            db.executescript(f.read())
        if not demo_data:
            for table in ("purchases", "tickets", "agents", "customers"):
                db.execute("DELETE FROM " + table)
        for table, rows in (("customers", customers), ("agents", agents),
                            ("tickets", tickets), ("purchases", purchases)):
            for row in rows:
                cols = list(row)
                db.execute("INSERT INTO %s (%s) VALUES (%s)" % (
                    table, ", ".join(cols), ", ".join("?" * len(cols))),
                    [row[c] for c in cols])
        db.commit()
        db.close()
        self._fingerprint = self.source_fingerprint()

    def desk(self, sql, params=()):
        """Change the source as the help desk would (followupd never does)."""
        db = sqlite3.connect(self.source)
        db.execute(sql, params)
        db.commit()
        db.close()
        self._fingerprint = self.source_fingerprint()

    def source_fingerprint(self):
        """(sha256, mtime_ns, companion files): what followupd must not change."""
        with open(self.source, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        extra = sorted(n for n in os.listdir(self.dir)
                       if n.startswith("helpdesk.db") and n != "helpdesk.db")
        return digest, os.stat(self.source).st_mtime_ns, extra

    def source_unchanged(self):
        """True when the source is as the test (desk) last left it."""
        return self.source_fingerprint() == self._fingerprint

    # -------------------------------------------------------- config

    def write_config(self, port, path=None, **sections):
        """Write a config and return its path (default self.conf).

        port: the SMTP port. Keyword arguments override sections: a dict
        per section name ("smtp", "queue", "rule checkin" as rule_checkin),
        key → value, a value of None removing the key; extra_lines is a
        list of raw lines appended at the end.
        """
        conf = {
            "source": {"database": "helpdesk.db", "busy_timeout": "5s"},
            "queue": {"dir": "queue", "min_backoff": "5m",
                      "max_backoff": "1h", "queue_lifetime": "5d"},
            "templates": {"dir": TEMPLATES},
            "smtp": {"host": "127.0.0.1", "port": str(port),
                     "from": FROM, "reply_to": REPLY_TO, "timeout": "10s"},
            "rule checkin": {"kind": "after_resolution", "delay": "3d",
                             "template": "checkin"},
        }
        extra = sections.pop("extra_lines", [])
        for name, values in sections.items():
            name = name.replace("rule_", "rule ")
            if values is None:          # a section of None removes it
                conf.pop(name, None)
                continue
            sect = conf.setdefault(name, {})
            for k, v in values.items():
                if v is None:
                    sect.pop(k, None)
                else:
                    sect[k] = str(v)
        lines = ["# written by tests/e2e/fixture.py"]
        for name, values in conf.items():
            lines.append("")
            lines.append("[%s]" % name)
            for k, v in values.items():
                lines.append("%s = %s" % (k, v))
        lines += extra
        path = path or self.conf
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return path

    # -------------------------------------------------------- followupd

    def run(self, *args, conf=None, timeout=60, vg=False, env=None):
        """followupd -c CONF ARGS…; returns a Result (never raises on exit
        status). vg=True: under valgrind when VALGRIND=1."""
        argv = [BIN, "-c", conf or self.conf] + [str(a) for a in args]
        if vg and VALGRIND:
            argv = valgrind_prefix() + argv
            timeout *= 10
        start = time.monotonic()
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=timeout,
                               env=env)
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = None, e.stdout or b"", e.stderr or b""
        r = Result(argv, rc, out.decode("utf-8", "replace"),
                   err.decode("utf-8", "replace"), time.monotonic() - start)
        self.log.write("$ %s\n%s%s[exit %s]\n" % (
            " ".join(argv), r.stdout, r.stderr, r.rc))
        self.log.flush()
        return r

    def once(self, now, **kw):
        return self.run("once", "--now", now, **kw)

    def spawn(self, *args, conf=None):
        """Start followupd without waiting (for SIGKILL tests)."""
        argv = [BIN, "-c", conf or self.conf] + [str(a) for a in args]
        errf = open(os.path.join(self.dir, "spawned.stderr"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=errf)
        errf.close()
        return p

    # -------------------------------------------------------- state.db

    def _state(self):
        # mode=ro: a test looks, it never changes followupd's state.
        return sqlite3.connect("file:%s?mode=ro" % self.state, uri=True,
                               timeout=10)

    def query(self, sql, params=()):
        if not os.path.exists(self.state):
            return []
        try:
            db = self._state()
            db.execute("SELECT 1 FROM sqlite_schema").fetchall()
        except sqlite3.OperationalError:
            # A WAL database whose -shm file is gone cannot always be
            # opened read-only; a plain connection that only reads will do.
            db = sqlite3.connect(self.state, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(sql, params)]
        finally:
            db.close()

    def jobs(self, rule=None):
        if rule is None:
            return self.query("SELECT * FROM jobs ORDER BY id")
        return self.query("SELECT * FROM jobs WHERE rule = ? ORDER BY id",
                          (rule,))

    def job(self, subject, occurrence=None, rule="checkin"):
        """The job for (rule, subject[, occurrence]); the latest when
        several; None when there is none."""
        sql = "SELECT * FROM jobs WHERE rule = ? AND subject = ?"
        params = [rule, str(subject)]
        if occurrence is not None:
            sql += " AND occurrence = ?"
            params.append(occurrence)
        rows = self.query(sql + " ORDER BY id", params)
        return rows[-1] if rows else None

    def events(self, job_id):
        return self.query("SELECT * FROM events WHERE job_id = ? ORDER BY id",
                          (job_id,))

    def suppressions(self):
        return self.query("SELECT * FROM suppressions")

    def spool_files(self, sub="new"):
        d = os.path.join(self.queue, sub)
        try:
            return sorted(os.path.join(d, n) for n in os.listdir(d))
        except FileNotFoundError:
            return []


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ------------------------------------------------------------------ mail

def parse(raw):
    """Parse a message with an independent parser (Python's email)."""
    return email.message_from_bytes(raw, policy=email.policy.default)


def received(server):
    """[(envelope, EmailMessage)] for every message the server captured."""
    return [(m, parse(m["eml"])) for m in server.messages()]


def by_recipient(server):
    """{rcpt: [(envelope, message), …]} over all captured messages."""
    out = {}
    for env, msg in received(server):
        for r in env.get("rcpt_tos", []):
            out.setdefault(r, []).append((env, msg))
    return out


def defects(msg):
    """All parser defects of a message and its parts, as text."""
    found = []
    for part in msg.walk():
        found += ["%s: %s" % (part.get_content_type(), d.__class__.__name__)
                  for d in part.defects]
    return found


def body(msg, subtype):
    """The decoded text of the first text/SUBTYPE part ('' when absent)."""
    part = msg.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else ""


def header_block(raw):
    """The raw header section (bytes up to the first empty line)."""
    i = raw.find(b"\r\n\r\n")
    if i < 0:
        i = raw.find(b"\n\n")
    return raw[:i] if i >= 0 else raw


def wait_for(pred, timeout=30, step=0.05):
    """Poll pred() until true or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def kill(proc, sig=signal.SIGKILL):
    """Signal a process we started and reap it."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def require_binary(t):
    """A failed test (not a skip) when the binary is missing: make check
    builds it first, so its absence is a real problem."""
    if not os.access(BIN, os.X_OK):
        t.ok(False, "the binary %s exists" % BIN,
             "run `make` first (make check does)")
        sys.exit(t.done())


# ------------------------------------------------------------------ calendars

def calendar_parts(msg):
    """[(method parameter, raw text)] of every text/calendar part."""
    out = []
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            out.append((part.get_param("method"),
                        part.get_payload(decode=True) or b""))
    return out


def parse_ics(raw):
    """Parse iCalendar text with an independent parser (python3-icalendar).
    Returns (calendar, {TZID: tzinfo from its VTIMEZONE}, [VEVENT])."""
    import icalendar  # Debian's python3-icalendar
    cal = icalendar.Calendar.from_ical(raw)
    zones, events = {}, []
    for comp in cal.walk():
        if comp.name == "VTIMEZONE":
            zones[str(comp["TZID"])] = comp.to_tz()
        elif comp.name == "VEVENT":
            events.append(comp)
    return cal, zones, events


def event_instant(event, prop, zones):
    """(Unix time, TZID or None) of DTSTART/DTEND, the wall clock read
    through the message's own VTIMEZONE (not the parser's zone database)."""
    import datetime
    v = event[prop]
    tzid = v.params.get("TZID")
    dt = v.dt
    if tzid is None:
        return int(dt.timestamp()), None
    naive = datetime.datetime(dt.year, dt.month, dt.day, dt.hour, dt.minute,
                              dt.second)
    tz = zones[str(tzid)]
    aware = tz.localize(naive) if hasattr(tz, "localize") else \
        naive.replace(tzinfo=tz)
    return int(aware.timestamp()), str(tzid)
