#!/usr/bin/python3
"""test_docs: the man pages are the one reference, and the other documents keep to their place.

- every key of config.c's tables is documented in its own section of
  scheduler.conf(5), and every section has its header there;
- every command and subcommand (read from `followupd --help` and from the
  usage strings in src/main.c, whichever shape the dispatch has) and every
  option has an entry in followupd(8);
- README.md is at most 250 lines, names `make demo` and `make check`, and
  neither it nor doc/*.md repeats a key or command table;
- no document links outside the repository, and every relative link resolves;
- doc/architecture.md names every module of src/.
"""

import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

ROOT = fx.ROOT
README_MAX = 250


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


# ------------------------------------------------------------------ config.c

def config_keys():
    """{section: [keys]} from config.c's key tables and its sections table."""
    src = read("src/config.c")
    tables = {}
    for m in re.finditer(r"static const struct key (\w+)\[\]\s*=\s*\{(.*?)\n\};",
                         src, re.S):
        tables[m.group(1)] = re.findall(r'^\s*\{\s*"([a-z_0-9]+)"\s*,',
                                        m.group(2), re.M)
    sections = {}
    for m in re.finditer(r'\{\s*"([a-z_]+)"\s*,\s*(\w+_keys)\s*,', src):
        if m.group(2) in tables:
            sections[m.group(1)] = tables[m.group(2)]
    return sections


def man_keys():
    """{section: set(keys)} as scheduler.conf(5) documents them: a key is an
    `.It Cm KEY Ns =` entry under the latest `[section]` header, before the
    next `.Sh`."""
    documented, headers = {}, set()
    section = None
    for line in read("man/scheduler.conf.5").splitlines():
        # A header is a line of its own: ".It Cm [smtp]", ".Cm [rule Ar NAME ]";
        # ".Cm [smtp] from" in a sentence is a reference, not a header.
        m = re.match(r"^\.(?:It )?Cm \[([a-z_]+)(?:\]| Ar \S+ \])\s*$", line)
        if m:
            section = m.group(1)
            headers.add(section)
            continue
        if line.startswith(".Sh "):
            section = None
            continue
        m = re.match(r"^\.It Cm ([a-z_0-9]+) Ns =", line)
        if m and section:
            documented.setdefault(section, set()).add(m.group(1))
    return documented, headers


def test_keys(t):
    sections = config_keys()
    nkeys = sum(len(k) for k in sections.values())
    # A parser that found nothing would make every check below pass.
    t.ok(len(sections) >= 8 and nkeys >= 50,
         "config.c's tables read: %d sections, %d keys" % (len(sections), nkeys))
    documented, headers = man_keys()
    for s in sorted(sections):
        t.ok(s in headers, "scheduler.conf(5) has the section [%s]" % s)
    missing = ["[%s] %s" % (s, k) for s in sorted(sections)
               for k in sections[s] if k not in documented.get(s, ())]
    t.ok(not missing, "scheduler.conf(5) documents every key of config.c "
         "in its section", *["missing: " + m for m in missing])
    extra = ["[%s] %s" % (s, k) for s in sorted(documented)
             for k in sorted(documented[s]) if k not in sections.get(s, ())]
    t.ok(not extra, "scheduler.conf(5) documents no key config.c lacks",
         *["not in config.c: " + e for e in extra])


# ------------------------------------------------------------------ commands

def help_commands(text):
    """Commands, subcommands and options of the `--help` text: each line of
    the commands block with two spaces of indent starts with its syntax,
    ended by two spaces or the end of the line."""
    cmds, opts = set(), set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", text))
    block = False
    for line in text.splitlines():
        if re.match(r"^[a-z]+:\s*$", line):
            block = line.startswith("commands")
            continue
        m = re.match(r"^  (-[a-z])\b", line)
        if m:
            opts.add(m.group(1))
        if not block or not re.match(r"^  [a-z]", line):
            continue
        words = re.split(r" {2,}", line.strip())[0].split()
        cmds.add(words[0])
        if len(words) > 1 and re.fullmatch(r"[a-z]+(\|[a-z]+)*", words[1]):
            for sub in words[1].split("|"):
                cmds.add(words[0] + " " + sub)
    return cmds, opts


def source_commands():
    """The same from src/main.c: every usage string ("usage: followupd CMD
    [SUB] ...", with further lines "       followupd CMD SUB ...") and every
    long option in a string literal. Holds for a strcmp chain and for a
    command table alike, as long as each command keeps its usage text."""
    src = read("src/main.c")
    cmds = set()
    for m in re.finditer(r'(?:usage: |"\s+)followupd ([a-z][a-z-]*)'
                         r'(?: ([a-z]+(?:\|[a-z]+)*)(?=[ \\"]))?', src):
        cmds.add(m.group(1))
        if m.group(2):
            for sub in m.group(2).split("|"):
                cmds.add(m.group(1) + " " + sub)
    opts = set(re.findall(r'"[^"\n]*?(?<![\w-])(--[a-z][a-z-]*)', src))
    return cmds, opts


def test_commands(t):
    fx.require_binary(t)
    r = subprocess.run([fx.BIN, "--help"], capture_output=True, text=True,
                       timeout=30)
    t.eq(r.returncode, 0, "followupd --help exits 0", r.stderr)
    hcmds, hopts = help_commands(r.stdout)
    scmds, sopts = source_commands()
    t.ok(len(hcmds) >= 10, "--help lists the commands (%d found)" % len(hcmds),
         r.stdout)
    if scmds:
        t.ok(scmds <= hcmds,
             "--help lists every command of main.c's usage strings",
             *["not in --help: " + c for c in sorted(scmds - hcmds)])
    else:
        t.note("src/main.c has no literal usage strings: --help alone")
    page = read("man/followupd.8")
    missing = [c for c in sorted(hcmds | scmds)
               if not re.search(r"^\.It Cm %s(\s|$)" % re.escape(c), page, re.M)]
    t.ok(not missing, "followupd(8) has an entry for every command "
         "(%d)" % len(hcmds | scmds), *["missing: " + c for c in missing])
    missing = []
    for o in sorted(hopts | sopts):
        if o in ("--help",):
            pat = r"Fl \\-help"
        elif o.startswith("--"):
            pat = r"Fl \\-%s\b" % re.escape(o[2:])
        else:
            pat = r"^\.It Fl %s\b" % re.escape(o[1:])
        if not re.search(pat, page, re.M):
            missing.append(o)
    t.ok(not missing, "followupd(8) documents every option "
         "(%d)" % len(hopts | sopts), *["missing: " + o for o in missing])


# ------------------------------------------------------------------ documents

def documents():
    return ["README.md"] + sorted(
        os.path.relpath(p, ROOT)
        for p in glob.glob(os.path.join(ROOT, "doc", "*.md")))


def links(text):
    """Markdown link targets: [text](target) and [ref]: target."""
    return (re.findall(r"\]\(([^)\s]+)\)", text) +
            re.findall(r"^\[[^\]]+\]:\s*(\S+)", text, re.M))


def test_readme(t):
    text = read("README.md")
    n = len(text.splitlines())
    t.ok(n <= README_MAX, "README.md has %d lines (at most %d)" % (n, README_MAX))
    for cmd in ("make demo", "make check"):
        t.ok(cmd in text, "README.md describes `%s`" % cmd)
    docs = documents()
    t.ok(len(docs) >= 5, "doc/ holds the guides (%s)" % ", ".join(docs[1:]))
    for d in docs[1:]:
        t.ok(os.path.basename(d) in text, "README.md points to %s" % d)


def test_links(t):
    root = os.path.realpath(ROOT)
    for d in documents() + ["bench/README.md"]:
        text = read(d)
        bad = []
        for target in links(text):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor in the same page
            path = target.split("#")[0]
            full = os.path.realpath(os.path.join(ROOT, os.path.dirname(d), path))
            if os.path.isabs(path) or not (full + "/").startswith(root + "/"):
                bad.append("%s: leaves the repository" % target)
            elif not os.path.exists(full):
                bad.append("%s: no such file" % target)
        if "../shared" in text or "DESIGN.md](" in text:
            bad.append("names ../shared or links DESIGN.md outside the tree")
        t.ok(not bad, "%s: every link stays in the repository and resolves" % d,
             *bad)


def test_no_duplicate_tables(t):
    """The key and command tables live in the man pages only: no other
    document has a table whose rows start with a config key or a command."""
    keys = {k for ks in config_keys().values() for k in ks}
    cmds, _ = source_commands()
    first = {c.split()[0] for c in cmds}
    for d in documents():
        rows = []
        for line in read(d).splitlines():
            m = re.match(r"^\|\s*`([^`]+)`", line)
            if not m:
                if re.match(r"^\|\s*(key|command)\s*\|", line):
                    rows.append(line)
                continue
            cell = m.group(1).split()
            if cell and (cell[0] in keys or cell[0] in first):
                rows.append(line)
        t.ok(not rows, "%s has no key or command table (man pages are the "
             "reference)" % d, *rows[:5])


def test_architecture(t):
    text = read("doc/architecture.md")
    mods = sorted(os.path.basename(p)[:-2]
                  for p in glob.glob(os.path.join(ROOT, "src", "*.c")))
    missing = [m for m in mods
               if not re.search(r"\b%s\.(c|h|\[ch\])(?!\w)" % re.escape(m), text)]
    t.ok(not missing, "doc/architecture.md names every module of src/ "
         "(%d)" % len(mods), *["missing: src/%s.c" % m for m in missing])
    for q in ("is it due", "may it go", "what does it say", "did it arrive"):
        t.ok(q in text.lower(), "doc/architecture.md answers '%s?'" % q)


def body(t):
    test_keys(t)
    test_commands(t)
    test_readme(t)
    test_links(t)
    test_no_duplicate_tables(t)
    test_architecture(t)


if __name__ == "__main__":
    fx.main(body)
