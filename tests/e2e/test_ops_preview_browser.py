#!/usr/bin/python3
"""test_ops_preview_browser: `preview --html` renders in a real browser (Debian's
headless chromium, file:// only, no network): the screenshot is not blank and the
customer's name is in the DOM. Skipped when chromium is not installed."""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

R = "2026-11-02 10:00:00"


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_argv(binary, profile):
    # Headless as root needs --no-sandbox; everything that could reach the
    # network is off, and any host name resolves to nothing.
    return [binary, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--user-data-dir=" + profile, "--window-size=800,900"]


def png_pixels(data):
    """(width, height, rows of RGB(A) bytes) of an 8-bit non-interlaced PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or interlace or ctype not in (2, 6):
        raise ValueError("unsupported PNG (depth %d, type %d)" % (depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride, rows, prev = w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pr) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def body(t, env):
    fx.require_binary(t)
    browser = chromium()
    if browser is None:
        print("ok 1 # SKIP chromium is not installed (make deps installs it)")
        t.n = 1
        return
    env.make_source(
        customers=[dict(id=1, email="zoe@example.com", name="Zoë Quintero",
                        first_name="Zoë")],
        agents=[dict(id=1, email="sam@acme.example", name="Sam Okafor")],
        tickets=[dict(id=7, customer_id=1, agent_id=1,
                      subject="Scanner jams", status="resolved",
                      created_at="2026-11-01 09:00:00", resolved_at=R,
                      updated_at=R)])
    env.write_config(fx.closed_port())
    page = os.path.join(env.dir, "preview.html")
    r = env.run("preview", "checkin", "7", "--html")
    t.eq(r.rc, 0, "preview --html", r)
    with open(page, "w", encoding="utf-8") as f:
        f.write(r.stdout)
    profile = tempfile.mkdtemp(prefix="chromium.", dir=env.dir)
    shot = os.path.join(env.dir, "preview.png")
    argv = chromium_argv(browser, profile)
    p = subprocess.run(argv + ["--screenshot=" + shot, "file://" + page],
                       capture_output=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    t.ok(p.returncode == 0 and os.path.exists(shot),
         "chromium takes a screenshot", p.stderr.decode()[-1500:])
    if os.path.exists(shot):
        with open(shot, "rb") as f:
            w, h, bpp, rows = png_pixels(f.read())
        t.ok(w >= 400 and h >= 400, "screenshot size %dx%d" % (w, h))
        colours = set()
        dark = 0
        for row in rows[::4]:
            for x in range(0, w * bpp, bpp * 4):
                px = row[x:x + 3]
                colours.add(px)
                if sum(px) < 300:
                    dark += 1
        t.ok(len(colours) > 20, "the screenshot is not blank (%d colours)"
             % len(colours))
        t.ok(dark > 50, "there is text on it (%d dark samples)" % dark)
    profile2 = tempfile.mkdtemp(prefix="chromium.", dir=env.dir)
    p = subprocess.run(chromium_argv(browser, profile2) +
                       ["--dump-dom", "file://" + page], capture_output=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    dom = p.stdout.decode("utf-8", "replace")
    t.ok(p.returncode == 0 and "Zoë" in dom and "Zoë Quintero" in dom,
         "the customer's name is in the DOM", dom[:1500])
    t.ok("followupd-preview" in dom and "Scanner jams" in dom,
         "the header box and the subject are in the DOM")


if __name__ == "__main__":
    env = fx.Env("browser")
    try:
        fx.main(lambda t: body(t, env))
    finally:
        env.cleanup()
