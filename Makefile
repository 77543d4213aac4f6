# followupd: build, test, demo. `make deps` installs what a fresh Debian needs.

PREFIX	?= /usr/local
CC	?= cc
PYTHON	?= /usr/bin/python3
PKGS	 = libesmtp-1.0 libical sqlite3 openssl libmicrohttpd
# libsystemd is optional: sd_notify(3) when present, else notify.c's own
# implementation of the same protocol. HAVE_SYSTEMD=0 forces the latter.
HAVE_SYSTEMD ?= $(shell pkg-config --exists libsystemd 2>/dev/null && echo 1 || echo 0)
ifeq ($(HAVE_SYSTEMD),1)
PKGS	+= libsystemd
SYSTEMD_CFLAGS = -DHAVE_SYSTEMD
endif

WARN	 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith -Wcast-qual
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS	?= -O2 -g
CFLAGS	+= -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP $(PKG_CFLAGS) $(SYSTEMD_CFLAGS)
LDLIBS	+= $(PKG_LIBS) -ldl -lm

ifeq ($(SANITIZE),1)
CFLAGS	+= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS	+= -fsanitize=address,undefined
BUILD	?= build-san
endif
# FUZZ=1 (set by `make fuzz`, with CC=clang): libFuzzer instrumentation.
ifeq ($(FUZZ),1)
CFLAGS	+= -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=all
LDFLAGS	+= -fsanitize=address,undefined
BUILD	?= build-fuzz
endif
BUILD	?= build

SRCS	:= $(wildcard src/*.c)
OBJS	:= $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS))
LIBOBJS	:= $(filter-out $(BUILD)/obj/main.o,$(OBJS))

# Unit tests: tests/unit/test_NAME.c, linked with the objects listed here
# (only what the module needs, so one module's test does not wait on another).
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TEST_DEPS_util     = util log
TEST_DEPS_log      = log
TEST_DEPS_value    = value util log
TEST_DEPS_mustache = mustache value util log
TEST_DEPS_mime     = mime util log
TEST_DEPS_complete = mime util log
TEST_DEPS_config   = config rating util log
TEST_DEPS_clock    = clock util log
TEST_DEPS_time     = clock util log
TEST_DEPS_ical     = ical clock util log
TEST_DEPS_spool    = spool util log
TEST_DEPS_smtp     = smtp util log
TEST_DEPS_store    = store clock util log
TEST_DEPS_rating   = rating util log
TEST_DEPS_bounce   = bounce mime util log
TEST_DEPS_verp     = verp consent gate codes rules format ical source value \
		     store spool config rating mime clock util log
TEST_DEPS_rating_store = store clock util log
TEST_DEPS_ratepage = ratepage rating consent store spool config http clock util log
TEST_DEPS_report   = report rating config store clock util log
TEST_DEPS_survey   = survey compose format consent codes rules ical mustache \
		     mime source value store spool config rating clock util log
# fuzz_ratepage links what test_ratepage links.
TEST_DEPS_backoff  = deliver gate consent codes rules ical source value config rating \
		     store spool smtp mime clock util log progress term verp
TEST_DEPS_gate     = gate consent codes rules ical source value store spool \
		     config rating mime clock util log
TEST_DEPS_compose  = compose format consent codes rules ical mustache mime \
		     source value store spool config rating clock util log
TEST_DEPS_render   = render compose format gate consent codes rules ical \
		     mustache mime source value store spool config rating survey \
		     clock progress util log term
TEST_DEPS_consent  = consent gate codes rules format ical source value store spool \
		     config rating mime clock util log
TEST_DEPS_plan     = plan rules ical source value store config rating clock util log
TEST_DEPS_daemon   = daemon deliver render compose format gate plan metrics \
		     http notify progress unsubscribe consent codes rules ical \
		     source value mustache mime smtp spool store config rating \
		     survey clock util log term explain bouncecmd bounce verp

# One version for everything: the file VERSION (tools/set-version.sh changes
# it and debian/changelog together). main.c prints it for --version; `make
# install` writes it into the man pages' .Os line.
VERSION	:= $(shell cat VERSION)

.PHONY: all check check-loaded unit-tests demo deps clean install bench valgrind
.PHONY: fuzz fuzz-bins crash-test deb deb-test
all: $(BUILD)/followupd

$(BUILD)/followupd: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/main.o: VERSION
$(BUILD)/obj/main.o: CPPFLAGS += -DFOLLOWUPD_VERSION='"$(VERSION)"'

$(BUILD)/tests/test_%.o: tests/unit/test_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -Itests/unit -c -o $@ $<

$(BUILD)/tests/tap.o: tests/unit/tap.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -Itests/unit -c -o $@ $<

.SECONDARY:
.SECONDEXPANSION:
$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(BUILD)/tests/tap.o \
    $$(addprefix $(BUILD)/obj/,$$(addsuffix .o,$$(TEST_DEPS_$$*)))
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fuzz harnesses (tests/fuzz/fuzz_NAME.c) also run in `make check`, without
# libFuzzer, over their seeds and regression inputs (tests/fuzz/standalone.c),
# linked with what the module's unit test links (TEST_DEPS_NAME).
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TESTS := $(patsubst %,$(BUILD)/tests/test_fuzz_%,$(FUZZ_NAMES))

$(BUILD)/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -Itests/fuzz -c -o $@ $<

$(BUILD)/tests/fuzz/standalone_%.o: tests/fuzz/standalone.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -Itests/fuzz -DFUZZ_NAME='"$*"' -c -o $@ $<

$(BUILD)/tests/test_fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o \
    $(BUILD)/tests/fuzz/standalone_%.o \
    $$(addprefix $(BUILD)/obj/,$$(addsuffix .o,$$(TEST_DEPS_$$*)))
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit-tests: $(UNIT_BINS) $(FUZZ_TESTS)

# `make fuzz`: each harness under libFuzzer (clang, ASan+UBSan) for
# FUZZ_SECONDS, starting from tests/fuzz/corpus/NAME; what it finds goes to
# build-fuzz/ (tests/fuzz/run.sh). A crash fails the target: copy the input
# to tests/fuzz/regress/NAME/ so `make check` keeps it as a regression test.
FUZZ_SECONDS ?= 60
FUZZ_BINS := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES))

$(BUILD)/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o \
    $$(addprefix $(BUILD)/obj/,$$(addsuffix .o,$$(TEST_DEPS_$$*)))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

fuzz: deps
	@$(MAKE) --no-print-directory FUZZ=1 CC=clang BUILD=build-fuzz fuzz-bins
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh build-fuzz $(FUZZ_NAMES)

# `make crash-test`: 2,000 due messages, SIGKILL at seeded random points and
# at each state transition, restart each time (tests/crash/run.py).
CRASH_SEED ?= 5
crash-test: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) $(PYTHON) tests/crash/run.py --seed $(CRASH_SEED)

# `check` and `demo` first install what a fresh Debian lacks (tools/deps.sh
# is quick when nothing is missing), then build in a second make so that the
# pkg-config flags are read after the libraries exist.
check: deps
	@$(MAKE) --no-print-directory all unit-tests
	@BUILD=$(BUILD) PYTHON=$(PYTHON) SANITIZE=$(SANITIZE) sh tests/run.sh

# `make check-loaded`: the same suite with two CPU-bound processes and a
# disk writer alongside (tools/loaded.sh), as on a busy CI runner. It must
# pass too: tests wait for what they need, with generous bounds.
check-loaded: deps
	@$(MAKE) --no-print-directory all unit-tests
	@BUILD=$(BUILD) PYTHON=$(PYTHON) SANITIZE=$(SANITIZE) \
	    sh tools/loaded.sh sh tests/run.sh

valgrind: all unit-tests
	@BUILD=$(BUILD) PYTHON=$(PYTHON) VALGRIND=1 sh tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) PYTHON=$(PYTHON) sh demo/run.sh

deps:
	@sh tools/deps.sh

# install: PREFIX (default /usr/local) and DESTDIR (staging) as usual.
# The example configuration goes to share/doc; SYSCONFDIR/followupd/
# scheduler.conf is created from it only when there is none: an operator's
# config is never overwritten. SYSCONFDIR defaults to /etc (systemd units
# and Debian admins look there), not PREFIX/etc.
SYSCONFDIR	?= /etc
SBINDIR		 = $(PREFIX)/sbin
DATADIR		 = $(PREFIX)/share/followupd
DOCDIR		 = $(PREFIX)/share/doc/followupd
MANDIR		 = $(PREFIX)/share/man
UNITDIR		?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR	?= $(PREFIX)/lib/sysusers.d
STATEDIR	?= /var/lib/followupd
LIBEXECDIR	?= $(PREFIX)/libexec/followupd
INSTALL		?= install
# Paths in the installed example: the state under StateDirectory=, the
# templates under share/.
INSTALL_SED = -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	-e 's|@DATADIR@|$(DATADIR)|g' -e 's|@STATEDIR@|$(STATEDIR)|g' \
	-e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g'

install: all
	$(INSTALL) -d -m 755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	    $(DESTDIR)$(DATADIR)/templates
	$(INSTALL) -m 755 $(BUILD)/followupd $(DESTDIR)$(SBINDIR)/followupd
	sed 's/^\.Os.*/.Os followupd $(VERSION)/' man/followupd.8 >$(DESTDIR)$(MANDIR)/man8/followupd.8
	sed 's/^\.Os.*/.Os followupd $(VERSION)/' man/scheduler.conf.5 >$(DESTDIR)$(MANDIR)/man5/scheduler.conf.5
	chmod 644 $(DESTDIR)$(MANDIR)/man8/followupd.8 $(DESTDIR)$(MANDIR)/man5/scheduler.conf.5
	cp -R templates/. $(DESTDIR)$(DATADIR)/templates/
	find $(DESTDIR)$(DATADIR)/templates -type d -exec chmod 755 {} + 
	find $(DESTDIR)$(DATADIR)/templates -type f -exec chmod 644 {} +
	sed $(INSTALL_SED) dist/scheduler.conf.in >$(DESTDIR)$(DOCDIR)/scheduler.conf.example
	chmod 644 $(DESTDIR)$(DOCDIR)/scheduler.conf.example
	$(INSTALL) -m 644 README.md $(DESTDIR)$(DOCDIR)/README.md
	$(INSTALL) -d -m 755 $(DESTDIR)$(DOCDIR)/doc
	$(INSTALL) -m 644 doc/*.md $(DESTDIR)$(DOCDIR)/doc/
	sed $(INSTALL_SED) dist/followupd.service.in >$(DESTDIR)$(UNITDIR)/followupd.service
	sed $(INSTALL_SED) dist/followupd-serve.service.in >$(DESTDIR)$(UNITDIR)/followupd-serve.service
	chmod 644 $(DESTDIR)$(UNITDIR)/followupd.service $(DESTDIR)$(UNITDIR)/followupd-serve.service
	$(INSTALL) -d -m 755 $(DESTDIR)$(LIBEXECDIR)
	sed $(INSTALL_SED) dist/desk-ready.in >$(DESTDIR)$(LIBEXECDIR)/desk-ready
	chmod 755 $(DESTDIR)$(LIBEXECDIR)/desk-ready
	$(INSTALL) -m 644 dist/followupd.sysusers $(DESTDIR)$(SYSUSERSDIR)/followupd.conf
	$(INSTALL) -d -m 755 $(DESTDIR)$(SYSCONFDIR)/followupd
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/followupd/scheduler.conf ]; then \
	    echo "install: $(DESTDIR)$(SYSCONFDIR)/followupd/scheduler.conf exists: left as it is (the example is $(DOCDIR)/scheduler.conf.example)"; \
	else \
	    $(INSTALL) -m 644 $(DESTDIR)$(DOCDIR)/scheduler.conf.example $(DESTDIR)$(SYSCONFDIR)/followupd/scheduler.conf && \
	    echo "install: created $(DESTDIR)$(SYSCONFDIR)/followupd/scheduler.conf: edit it, then: followupd -c $(SYSCONFDIR)/followupd/scheduler.conf check"; \
	fi

# `make bench`: an optimised build of its own in build-bench/ (never the
# test build), the render driver, then bench/run.py: synthetic desks cached
# in bench/data/, Postfix's smtp-sink/smtp-source on 127.0.0.1; the table
# goes to stdout and bench/README.md.
bench: deps
	@$(MAKE) --no-print-directory BUILD=build-bench all build-bench/render_bench
	@BUILD=build-bench $(PYTHON) bench/run.py

$(BUILD)/render_bench: bench/render_bench.c $(LIBOBJS)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS)

# `make deb`: the Debian package (debian/, dpkg-buildpackage -us -uc -b)
# built in a clean copy of the tree, build-deb/src; the .deb lands in
# build-deb/. `make deb-test` (root, a Debian machine): build, lintian,
# install, run, upgrade, remove and purge it (tests/deb/test_deb.sh).
deb: deps
	@sh tools/deb.sh build-deb

deb-test: deps
	@PYTHON=$(PYTHON) sh tests/deb/test_deb.sh

clean:
	rm -rf build build-san build-deb

-include $(OBJS:.o=.d) $(patsubst %,%.d,$(UNIT_BINS)) \
	 $(wildcard $(BUILD)/tests/fuzz/*.d)
