"""test_mime_parse: messages built by src/mime.c, read back by Python's email package.

`$BUILD/tests/test_mime --write DIR` (BUILD defaults to "build") writes
sample messages DIR/NAME.eml and the raw body inputs DIR/NAME.text,
.html, .ics. Each message is parsed with
email.parser.BytesParser(policy=email.policy.default), an independent
MIME implementation, and checked: no defects, decoded headers equal the
Unicode we expect (written here, not taken from the C side), one To
address, Message-ID as given, content types and charsets, bodies equal
the inputs byte for byte (line ends normalised), CRLF only, no line over
998 octets. Output is TAP; exit status 1 when anything failed. KEEP=1
keeps the sample directory.
"""

import datetime
import email.header
import email.parser
import email.policy
import email.utils
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD", "build")
BUILD_DIR = BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD)
DRIVER = os.path.join(BUILD_DIR, "tests", "test_mime")
# VALGRIND=1 (make valgrind): the driver runs under valgrind too.
VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--suppressions=" + os.path.join(ROOT, "tests", "valgrind.supp")]

LINE_MAX = 998  # RFC 5322 2.1.1
DATE = datetime.datetime(2025, 11, 25, 11, 22, 0, tzinfo=datetime.timezone.utc)
ELLIPSIS = "\u2026"
PHRASE_MAX = 200

ZOE = "Zo\u00eb \u00f1and\u00fa"
PARTY = "\U0001F389"
SHALOM = "\u05e9\u05dc\u05d5\u05dd"

# What each sample must decode to. The C side sends raw, hostile input;
# these are the cleaned values we expect a reader to see.
EXPECT = {
    "plain": {
        "message_id": "<plain.1@followupd.example>",
        "subject": "Your follow-up",
        "from": ("Followup Team", "noreply@example.com"),
        "to": ("Ana Example", "ana@example.com"),
        "reply_to": None,
        "tree": "text/plain",
    },
    "hostile": {
        "message_id": "<hostile.2@followupd.example>",
        "subject": ZOE + " " + PARTY + " <script>alert(1)</script> & "
                   "Bcc: evil@example.com =?utf-8?q?a=0D=0AX:_y?=",
        "from": ("Zo\u00eb Ops", "ops@example.com"),
        "to": ('Smith, John "JJ" <evil@x> Cc: victim@example.org',
               "john@example.com"),
        "reply_to": ("Help Desk", "help@example.com"),
        "extra": {
            "X-Campaign": "spring Bcc: evil@example.com",
            "List-Unsubscribe": "<https://example.com/u?t=abc&x=1>",
            "X-Note": "caf\u00e9 =?utf-8?q?x?= " + PARTY + " To: x@y",
        },
        "tree": ("multipart/alternative", ("text/plain", "text/html")),
    },
    "bigname": {
        "message_id": "<bigname.3@followupd.example>",
        "subject": "Long " + "\u00e9" * (PHRASE_MAX - 1 - 5) + ELLIPSIS,
        "from": ("Followup Team", "noreply@example.com"),
        "to": ("\u00e4" * (PHRASE_MAX - 1) + ELLIPSIS, "ana@example.com"),
        "reply_to": None,
        "tree": ("multipart/alternative", ("text/plain", "text/html")),
    },
    "calendar": {
        "message_id": "<calendar.4@followupd.example>",
        "subject": "Invitation: follow-up visit",
        "from": ("Followup Team", "noreply@example.com"),
        "to": ("Ana Example", "ana@example.com"),
        "reply_to": None,
        "method": "REQUEST",
        "tree": ("multipart/mixed", (
            ("multipart/alternative", ("text/plain", "text/html")),
            "text/calendar")),
    },
    "cancel": {
        "message_id": "<cancel.5@followupd.example>",
        "subject": "Cancelled: follow-up visit",
        "from": ('Zo\u00eb "Q" Ops', "ops@example.com"),
        "to": ("Ana Example", "ana@example.com"),
        "reply_to": None,
        "method": "CANCEL",
        "tree": ("multipart/mixed", ("text/plain", "text/calendar")),
    },
    "rtl": {
        "message_id": "<rtl.6@followupd.example>",
        "subject": SHALOM + " \u05e2\u05d5\u05dc\u05dd",
        "from": ("Followup Team", "noreply@example.com"),
        "to": ('\u05d3\u05e0\u05d4 "DK" \u05db\u05d4\u05df, <evil@example.org>',
               "ana@example.com"),
        "reply_to": None,
        "tree": "text/plain",
    },
}

SUFFIX = {"text/plain": "text", "text/html": "html", "text/calendar": "ics"}


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name))
        if not cond and diag is not None:
            for line in str(diag).splitlines()[:20]:
                print("#   " + line)
        sys.stdout.flush()
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got:  %r\nwant: %r" % (
            shorten(got), shorten(want)))

    def done(self):
        print("1..%d" % self.n)
        if self.failed:
            print("# %d of %d failed" % (self.failed, self.n))
        return 1 if self.failed else 0


def shorten(v):
    if isinstance(v, (str, bytes)) and len(v) > 300:
        return v[:150] + v[-150:]
    return v


def wire_checks(t, name, raw):
    lines = raw.split(b"\r\n")
    t.ok(raw.endswith(b"\r\n"), "%s: ends with CRLF" % name)
    joined = b"".join(lines)
    t.ok(b"\n" not in joined and b"\r" not in joined,
         "%s: no bare LF or CR" % name)
    longest = max(len(line) for line in lines)
    t.ok(longest <= LINE_MAX, "%s: no line over 998 octets (longest %d)"
         % (name, longest))
    head = raw.split(b"\r\n\r\n", 1)[0]
    t.ok(all(b < 0x80 for b in head), "%s: header block is 7-bit" % name)


def tree_of(part):
    """("multipart/x", (children...)) or "type/sub" for a leaf."""
    if part.is_multipart():
        return (part.get_content_type(),
                tuple(tree_of(p) for p in part.iter_parts()))
    return part.get_content_type()


def raw_header(compat, name):
    """The header as on the wire, unfolded (compat32 leaves it encoded)."""
    return re.sub(r"\r?\n([ \t])", r"\1", compat[name])


ADJACENT_EW = re.compile(r"\?=\s+=\?")


def rfc2047_mailbox(raw):
    """(display name, addr) decoded by the RFC 2047 6.2 rules.

    email.header.decode_header drops the white space between adjacent
    encoded words as RFC 2047 6.2 says; the policy.default address parser
    of Python < 3.14 keeps it (CPython gh-128110), so long encoded names
    are checked through this path too.
    """
    name, addr = email.utils.parseaddr(raw)
    return str(email.header.make_header(email.header.decode_header(name))), addr


def normalise(b):
    return b.replace(b"\r\n", b"\n")


def check_sample(t, d, name, exp):
    path = os.path.join(d, name + ".eml")
    if not t.ok(os.path.exists(path), "%s: written" % name):
        return
    with open(path, "rb") as f:
        raw = f.read()
    wire_checks(t, name, raw)

    msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    defects = [(p.get_content_type(), p.defects) for p in msg.walk()
               if p.defects]
    for h, v in msg.items():
        if getattr(v, "defects", None):
            defects.append((h, v.defects))
    t.ok(not defects, "%s: no defects in the message, parts or headers"
         % name, defects)

    for h in ("Date", "Message-ID", "From", "To", "Subject", "MIME-Version",
              "Auto-Submitted"):
        t.eq(len(msg.get_all(h) or []), 1, "%s: exactly one %s" % (name, h))
    t.ok("Cc" not in msg and "Bcc" not in msg,
         "%s: no Cc or Bcc header" % name)

    t.eq(msg["Message-ID"], exp["message_id"], "%s: Message-ID" % name)
    t.eq(msg["Date"].datetime, DATE, "%s: Date" % name)
    date_line = [line for line in raw.split(b"\r\n") if line.startswith(b"Date:")]
    t.ok(date_line and date_line[0].endswith(b" +0000"),
         "%s: Date in UTC +0000" % name, date_line)
    t.eq(str(msg["Subject"]), exp["subject"], "%s: Subject" % name)
    t.eq(msg["MIME-Version"], "1.0", "%s: MIME-Version" % name)
    t.eq(msg["Auto-Submitted"], "auto-generated", "%s: Auto-Submitted" % name)

    compat = email.parser.BytesParser(
        policy=email.policy.compat32).parsebytes(raw)
    for h in ("From", "To"):
        addrs = msg[h].addresses
        t.eq(len(addrs), 1, "%s: one %s address" % (name, h))
        want = exp[h.lower()]
        if not addrs:
            continue
        t.eq(addrs[0].addr_spec, want[1], "%s: %s address" % (name, h))
        rawv = raw_header(compat, h)
        t.eq(rfc2047_mailbox(rawv), want,
             "%s: %s display name (RFC 2047 decoding)" % (name, h))
        got = addrs[0].display_name
        if got != want[0] and ADJACENT_EW.search(rawv) and \
                got.replace(" ", "") == want[0].replace(" ", ""):
            t.ok(True, "%s: %s display name (policy.default; spaces "
                 "between encoded words kept, CPython gh-128110)" % (name, h))
        else:
            t.eq(got, want[0], "%s: %s display name (policy.default)"
                 % (name, h))
    if exp["reply_to"] is None:
        t.ok("Reply-To" not in msg, "%s: no Reply-To" % name)
    else:
        addrs = msg["Reply-To"].addresses
        t.eq([(a.display_name, a.addr_spec) for a in addrs],
             [exp["reply_to"]], "%s: Reply-To" % name)
    for h, want in exp.get("extra", {}).items():
        t.eq(str(msg[h]), want, "%s: %s" % (name, h))

    t.eq(tree_of(msg), exp["tree"], "%s: MIME structure" % name)
    for part in msg.walk():
        if part.is_multipart():
            t.ok(part.get_boundary(), "%s: %s has a boundary"
                 % (name, part.get_content_type()))
            continue
        ctype = part.get_content_type()
        charset = part.get_param("charset")
        t.ok(charset is not None and charset.lower() == "utf-8",
             "%s: %s charset is UTF-8 (%s)" % (name, ctype, charset))
        cte = part.get("Content-Transfer-Encoding", "").lower()
        t.ok(cte in ("quoted-printable", "base64"),
             "%s: %s is quoted-printable or base64 (%s)" % (name, ctype, cte))
        if ctype == "text/calendar":
            t.eq(part.get_param("method"), exp["method"],
                 "%s: calendar method" % name)
        with open(os.path.join(d, name + "." + SUFFIX[ctype]), "rb") as f:
            want = f.read()
        got = part.get_payload(decode=True)
        t.eq(normalise(got), normalise(want),
             "%s: %s body decodes to the input" % (name, ctype))
        text = part.get_content()
        t.eq(text.replace("\r\n", "\n"), want.decode("utf-8").replace("\r\n", "\n"),
             "%s: %s get_content() as UTF-8 text" % (name, ctype))
    if name == "rtl":
        t.eq(msg.get("Content-Transfer-Encoding", "").lower(), "base64",
             "%s: mostly non-ASCII text travels as base64" % name)


def main():
    t = Tap()
    if not os.access(DRIVER, os.X_OK):
        t.ok(False, "driver %s exists (make %s)" % (DRIVER, DRIVER))
        return t.done()
    d = tempfile.mkdtemp(prefix="test_mime_parse.")
    try:
        cmd = [DRIVER, "--write", d]
        if os.environ.get("VALGRIND") == "1":
            cmd = VALGRIND + cmd
        r = subprocess.run(cmd, capture_output=True, timeout=300)
        if not t.ok(r.returncode == 0, "test_mime --write exits 0",
                    r.stderr.decode("utf-8", "replace")):
            return t.done()
        for name, exp in EXPECT.items():
            check_sample(t, d, name, exp)
    finally:
        if os.environ.get("KEEP") == "1":
            print("# kept " + d)
        else:
            shutil.rmtree(d, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
