#!/usr/bin/python3
"""smtp_server: an SMTP capture and fault-injection server for tests and the demo.

Run it with Debian's /usr/bin/python3 (python3-aiosmtpd); it binds 127.0.0.1
only and never connects anywhere.

    /usr/bin/python3 tests/smtp_server.py --port 0 --maildir DIR [--portfile F]
        [--tls-cert C --tls-key K [--require-starttls]]
        [--auth-user U --auth-pass P [--auth-required]]
        [--fault SPEC]... [--fault-file F] [--lifetime SECONDS] [--verbose]

Ready: with --port 0 a free port is picked; once the socket listens the port
is written to --portfile (atomically) and "listening on 127.0.0.1:PORT" is
printed on stdout (flushed). SIGTERM/SIGINT stop it; it also exits by itself
after --lifetime seconds (default 600) so a crashed test cannot leak it.

Captured mail: each accepted DATA transaction becomes DIR/NNNNNN.eml (the
bytes received, dot-unstuffed, CRLF kept) then DIR/NNNNNN.json (envelope:
mail_from, rcpt_tos, mail_options, peer, tls, auth_user, size). Both are
written tmp-then-rename, .eml first: a message is complete once its .json
exists. Numbering continues after the highest number already in DIR, so a
restarted server can share a maildir. The file is written before the 250
reply is sent. Each closed connection appends one JSON line to
DIR/sessions.jsonl: peer, tls, auth_user, and the command verbs the client
sent (never their arguments), so a test can check e.g. that no MAIL was sent.

Fault SPECs (--fault, repeatable), matched in order, first match wins:
    greeting:CODE               reply CODE at connect and close (e.g. 421)
    greeting-stall              accept the connection, never greet
    mail:SUBSTR:CODE[:TEXT]     reply CODE to MAIL FROM when address contains SUBSTR
    rcpt:SUBSTR:CODE[:TEXT]     reply CODE to RCPT TO when address contains SUBSTR
    data:SUBSTR:CODE[:TEXT]     reply CODE at end of DATA when a recipient contains SUBSTR
    auth:CODE[:TEXT]            reply CODE to every AUTH attempt
    data-drop[:SUBSTR]          close the connection after end of DATA, no reply
    data-drop-stored[:SUBSTR]   store the message, then close without a reply
                                (the client cannot know it was delivered)
    data-cmd-drop[:SUBSTR]      close the connection at the DATA command (before
                                354: nothing of the message was sent)
    stall-data[:SUBSTR]         never reply after end of DATA
    data-delay:SECONDS          wait before replying at end of DATA
SUBSTR "*" matches everything. Without TEXT a plausible text is used
("550 5.1.1 <bob@x>: no such user", "451 4.3.0 try again later", ...).
Messages refused at end of DATA are not stored.

Changing behaviour without a restart: --fault-file F holds one SPEC per line
('#' comments allowed) and is re-read at every new connection (a missing file
means no faults from it); its faults come after the --fault ones. Tests can
also stop the server and start a new one on the same --port and --maildir.

Importable: make_cert(dir) creates a self-signed cert for 127.0.0.1/localhost;
SmtpServer is a context manager that runs this file as a subprocess on a free
port and lists received messages:

    with SmtpServer(maildir, faults=["rcpt:bob:550"]) as srv:
        ... connect to 127.0.0.1:srv.port ...
        msgs = srv.wait_messages(3)      # [{"eml": bytes, "mail_from": ...}]
"""

import argparse
import asyncio
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
HERE = os.path.abspath(__file__)
PYTHON = "/usr/bin/python3"

DEFAULT_TEXT = {
    421: "4.3.2 service not available, closing transmission channel",
    450: "4.2.1 mailbox unavailable, try again later",
    451: "4.3.0 try again later",
    452: "4.3.1 insufficient system storage",
    454: "4.7.0 temporary authentication failure",
    535: "5.7.8 authentication credentials invalid",
    550: "5.1.1 {addr}: no such user",
    551: "5.1.6 {addr}: user not local",
    552: "5.3.4 message too big",
    553: "5.1.3 {addr}: mailbox name not allowed",
    554: "5.6.0 message rejected",
}


def make_cert(directory, san="IP:127.0.0.1,DNS:localhost", prefix=""):
    """Create DIR/<prefix>cert.pem and DIR/<prefix>key.pem: self-signed,
    CN=localhost, subjectAltName SAN (default IP:127.0.0.1,DNS:localhost),
    valid one day. The cert is its own CA file. Returns (cert, key)."""
    cert = os.path.join(directory, prefix + "cert.pem")
    key = os.path.join(directory, prefix + "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=" + san,
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=60)
    return cert, key


# ---------------------------------------------------------------- faults

class Fault:
    def __init__(self, kind, match="*", code=0, text=None, seconds=0.0):
        self.kind = kind
        self.match = match
        self.code = code
        self.text = text
        self.seconds = seconds

    def matches(self, addrs):
        if self.match == "*":
            return True
        return any(self.match.lower() in (a or "").lower() for a in addrs)

    def reply(self, addr=""):
        text = self.text
        if text is None:
            text = DEFAULT_TEXT.get(self.code)
        if text is None:
            cls = self.code // 100
            text = "%d.0.0 fault injected" % cls
        return "%d %s" % (self.code, text.replace("{addr}", "<%s>" % addr))


def parse_fault(spec):
    """Parse one SPEC (see the module docstring); ValueError when malformed."""
    spec = spec.strip()
    parts = spec.split(":")
    kind = parts[0]
    try:
        if kind == "greeting" and len(parts) == 2:
            return Fault("greeting", code=int(parts[1]))
        if kind == "greeting-stall" and len(parts) == 1:
            return Fault("greeting-stall")
        if kind in ("mail", "rcpt", "data") and len(parts) >= 3:
            text = ":".join(parts[3:]) if len(parts) > 3 else None
            return Fault(kind, parts[1] or "*", int(parts[2]), text)
        if kind == "auth" and len(parts) >= 2:
            text = ":".join(parts[2:]) if len(parts) > 2 else None
            return Fault("auth", code=int(parts[1]), text=text)
        if kind in ("data-drop", "stall-data", "data-drop-stored",
                    "data-cmd-drop") and len(parts) <= 2:
            return Fault(kind, parts[1] if len(parts) == 2 else "*")
        if kind == "data-delay" and len(parts) == 2:
            return Fault("data-delay", seconds=float(parts[1]))
    except ValueError:
        pass
    raise ValueError("bad fault spec: %r" % spec)


def read_fault_file(path):
    faults = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    faults.append(parse_fault(line))
    except FileNotFoundError:
        pass
    return faults


# ---------------------------------------------------------------- maildir

def write_atomic(path, data):
    tmp = os.path.join(os.path.dirname(path),
                       ".%s.tmp" % os.path.basename(path))
    # No fsync: readers need atomicity, not durability, and tests need speed.
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class Maildir:
    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.seq = 0
        for name in os.listdir(directory):
            m = re.fullmatch(r"(\d{6})\.(eml|json)", name)
            if m:
                self.seq = max(self.seq, int(m.group(1)))

    def store(self, content, envelope):
        self.seq += 1
        base = os.path.join(self.dir, "%06d" % self.seq)
        write_atomic(base + ".eml", content)
        envelope = dict(envelope, size=len(content))
        write_atomic(base + ".json",
                     json.dumps(envelope, indent=1).encode() + b"\n")
        return self.seq

    def log_session(self, record):
        with open(os.path.join(self.dir, "sessions.jsonl"), "a",
                  encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def list_messages(directory):
    """Complete messages in DIR, oldest first: envelope dicts plus "eml"
    (the bytes) and "name" (NNNNNN)."""
    out = []
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return out
    for name in names:
        m = re.fullmatch(r"(\d{6})\.json", name)
        if not m:
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            env = json.load(f)
        with open(os.path.join(directory, m.group(1) + ".eml"), "rb") as f:
            env["eml"] = f.read()
        env["name"] = m.group(1)
        out.append(env)
    return out


# ---------------------------------------------------------------- server

def build_server(args):
    """Return a protocol factory for asyncio's create_server."""
    # Imported here so that `import smtp_server` for make_cert/SmtpServer
    # works even where aiosmtpd is missing.
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

    maildir = Maildir(args.maildir)
    static_faults = [parse_fault(s) for s in args.fault]
    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and args.auth_user is not None
              and auth_data.login == args.auth_user.encode()
              and auth_data.password == args.auth_pass.encode())
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    class Handler:
        async def handle_EHLO(self, server, session, envelope, hostname,
                              responses):
            session.host_name = hostname
            if args.auth_user is None:
                # Offer AUTH only when configured with a user.
                responses = [r for r in responses
                             if not r.startswith("250-AUTH")]
            return responses

        async def handle_MAIL(self, server, session, envelope, address,
                              options):
            f = server.find_fault("mail", [address])
            if f is not None:
                return f.reply(address)
            envelope.mail_from = address
            envelope.mail_options.extend(options)
            return "250 OK"

        async def handle_RCPT(self, server, session, envelope, address,
                              options):
            f = server.find_fault("rcpt", [address])
            if f is not None:
                return f.reply(address)
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            rcpts = envelope.rcpt_tos
            for f in server.faults:
                if not f.matches(rcpts):
                    continue
                if f.kind == "data-delay":
                    await asyncio.sleep(f.seconds)
                elif f.kind == "stall-data":
                    await asyncio.sleep(10 ** 6)
                elif f.kind == "data-drop":
                    server.transport.close()
                    await asyncio.sleep(10 ** 6)
                elif f.kind == "data":
                    return f.reply(rcpts[0] if rcpts else "")
            drop_after = any(f.kind == "data-drop-stored" and f.matches(rcpts)
                             for f in server.faults)
            login = None
            if session.auth_data is not None:
                login = getattr(session.auth_data, "login", None)
                if isinstance(login, bytes):
                    login = login.decode("utf-8", "replace")
            peer = session.peer
            n = maildir.store(envelope.original_content, {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(rcpts),
                "mail_options": list(envelope.mail_options),
                "peer": "%s:%s" % (peer[0], peer[1]) if peer else None,
                "tls": session.ssl is not None,
                "auth_user": login,
            })
            if drop_after:
                server.transport.close()
                await asyncio.sleep(10 ** 6)
            return "250 2.0.0 OK queued as %06d" % n

    class FaultySMTP(SMTP):
        """aiosmtpd's SMTP with a fault list read per connection."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.faults = list(static_faults)
            if args.fault_file:
                self.faults += read_fault_file(args.fault_file)
            self.verbs = []

        def find_fault(self, kind, addrs):
            for f in self.faults:
                if f.kind == kind and f.matches(addrs):
                    return f
            return None

        async def _handle_client(self):
            g = self.find_fault("greeting", [])
            if g is not None:
                await self.push(g.reply())
                self.transport.close()
                return
            if self.find_fault("greeting-stall", []) is not None:
                await asyncio.sleep(10 ** 6)
                return
            await super()._handle_client()

        async def smtp_DATA(self, arg):
            rcpts = self.envelope.rcpt_tos if self.envelope else []
            if rcpts and self.find_fault("data-cmd-drop", rcpts) is not None:
                self.transport.close()
                return
            return await super().smtp_DATA(arg)

        async def smtp_AUTH(self, arg):
            f = self.find_fault("auth", [])
            if f is not None:
                return await self.push(f.reply())
            return await super().smtp_AUTH(arg)

        def connection_made(self, transport):
            # One line per connection, so a test can wait until every
            # session has been logged (SmtpServer.settled) instead of
            # sleeping for a guess.
            try:
                with open(os.path.join(maildir.dir, "connects.log"), "a",
                          encoding="utf-8") as f:
                    f.write("connect\n")
            except OSError:
                pass
            super().connection_made(transport)

        def connection_lost(self, error):
            session = self.session
            login = None
            if session is not None and session.auth_data is not None:
                login = getattr(session.auth_data, "login", None)
                if isinstance(login, bytes):
                    login = login.decode("utf-8", "replace")
            try:
                maildir.log_session({
                    "peer": "%s:%s" % session.peer[:2]
                    if session and session.peer else None,
                    "tls": bool(session and session.ssl is not None),
                    "auth_user": login,
                    "verbs": self.verbs,
                })
            except OSError:
                pass
            super().connection_lost(error)

    def factory():
        smtp = FaultySMTP(
            Handler(),
            hostname="localhost",
            tls_context=tls_context,
            require_starttls=bool(args.require_starttls and tls_context),
            authenticator=authenticator,
            auth_required=args.auth_required,
            auth_require_tls=tls_context is not None,
            loop=asyncio.get_event_loop(),
        )
        # Note each command verb (never its argument) for sessions.jsonl.
        for verb, method in list(smtp._smtp_methods.items()):
            smtp._smtp_methods[verb] = _noting(smtp, verb, method)
        return smtp

    return factory


def _noting(smtp, verb, method):
    async def wrapper(arg):
        smtp.verbs.append(verb)
        return await method(arg)
    return wrapper


async def serve(args):
    loop = asyncio.get_running_loop()
    factory = build_server(args)
    server = await loop.create_server(factory, host=HOST, port=args.port,
                                      reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    if args.portfile:
        write_atomic(args.portfile, b"%d\n" % port)
    print("listening on %s:%d" % (HOST, port), flush=True)

    stop = loop.create_future()

    def finish(why):
        if not stop.done():
            stop.set_result(why)

    loop.add_signal_handler(signal.SIGTERM, finish, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, finish, "SIGINT")
    loop.call_later(args.lifetime, finish, "lifetime")
    why = await stop
    if args.verbose:
        print("stopping (%s)" % why, file=sys.stderr, flush=True)
    server.close()
    # Do not wait for stalled connections: they are closed with the process.
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--maildir", required=True)
    p.add_argument("--portfile")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--auth-user")
    p.add_argument("--auth-pass")
    p.add_argument("--auth-required", action="store_true",
                   help="refuse MAIL before AUTH (530)")
    p.add_argument("--fault", action="append", default=[])
    p.add_argument("--fault-file")
    p.add_argument("--lifetime", type=float, default=600)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.auth_user is not None and args.auth_pass is None:
        p.error("--auth-user needs --auth-pass")
    try:
        for s in args.fault:
            parse_fault(s)
    except ValueError as e:
        p.error(str(e))
    import logging
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    else:
        # aiosmtpd warns about its own deprecated login_data on every AUTH.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
    return asyncio.run(serve(args))


# ---------------------------------------------------------------- helper

class SmtpServer:
    """Run tests/smtp_server.py as a subprocess on a free 127.0.0.1 port.

    with SmtpServer(maildir=None, faults=(), tls=False, require_starttls=False,
                    auth=None, fault_file=None, lifetime=600) as srv:
        srv.port, srv.maildir, srv.cert (when tls), srv.messages(),
        srv.wait_messages(n, timeout), srv.sessions()

    maildir None: a temporary directory removed on exit. tls=True creates a
    self-signed certificate (srv.cert is the CA file to trust). auth is a
    (user, password) pair. stop() is idempotent; the subprocess is killed
    if it does not exit within 5 s of SIGTERM.
    """

    def __init__(self, maildir=None, faults=(), tls=False,
                 require_starttls=False, auth=None, fault_file=None,
                 lifetime=600, port=0, python=None):
        self._tmp = None
        if maildir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="smtpsrv.")
            maildir = os.path.join(self._tmp.name, "mail")
        self.maildir = maildir
        self.faults = list(faults)
        self.tls = tls
        self.require_starttls = require_starttls
        self.auth = auth
        self.fault_file = fault_file
        self.lifetime = lifetime
        self.port = port
        self.python = python or os.environ.get("PYTHON") or PYTHON
        self.cert = self.key = None
        self.proc = None
        self._certdir = None

    def start(self, timeout=20):
        os.makedirs(self.maildir, exist_ok=True)
        cmd = [self.python, HERE, "--port", str(self.port),
               "--maildir", self.maildir, "--lifetime", str(self.lifetime)]
        if self.tls:
            if self.cert is None:
                self._certdir = tempfile.TemporaryDirectory(prefix="smtpcert.")
                self.cert, self.key = make_cert(self._certdir.name)
            cmd += ["--tls-cert", self.cert, "--tls-key", self.key]
            if self.require_starttls:
                cmd.append("--require-starttls")
        if self.auth:
            cmd += ["--auth-user", self.auth[0], "--auth-pass", self.auth[1]]
        if self.fault_file:
            cmd += ["--fault-file", self.fault_file]
        for f in self.faults:
            cmd += ["--fault", f]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        line = _readline_timeout(self.proc, timeout)
        m = re.match(r"listening on 127\.0\.0\.1:(\d+)", line or "")
        if not m:
            self.stop()
            raise RuntimeError("smtp_server did not start: %r" % line)
        self.port = int(m.group(1))
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def restart(self, faults=None):
        """Stop and start again on the same port and maildir."""
        self.stop()
        if faults is not None:
            self.faults = list(faults)
        return self.start()

    def messages(self):
        return list_messages(self.maildir)

    def wait_messages(self, n, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if len(msgs) >= n or time.monotonic() > deadline:
                return msgs
            time.sleep(0.05)

    def settled(self, timeout=60):
        """Wait until every connection made so far has closed and been
        logged in sessions.jsonl; True when so within timeout."""
        def done():
            try:
                with open(os.path.join(self.maildir, "connects.log"),
                          encoding="utf-8") as f:
                    made = sum(1 for _ in f)
            except FileNotFoundError:
                made = 0
            return len(self.sessions()) >= made
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def sessions(self):
        path = os.path.join(self.maildir, "sessions.jsonl")
        try:
            with open(path, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self._certdir is not None:
            self._certdir.cleanup()
        if self._tmp is not None:
            self._tmp.cleanup()
        return False


def _readline_timeout(proc, timeout):
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            return None
        return proc.stdout.readline()
    finally:
        sel.close()


if __name__ == "__main__":
    sys.exit(main())
