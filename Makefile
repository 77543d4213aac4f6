# followupd: build, test, demo. `make deps` installs what a fresh Debian needs.

PREFIX	?= /usr/local
CC	?= cc
PYTHON	?= /usr/bin/python3
PKGS	 = libesmtp-1.0 libical sqlite3 gmime-3.0 glib-2.0 openssl

WARN	 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith -Wcast-qual
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS	?= -O2 -g
CFLAGS	+= -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP $(PKG_CFLAGS)
LDLIBS	+= $(PKG_LIBS) -ldl -lm

ifeq ($(SANITIZE),1)
CFLAGS	+= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS	+= -fsanitize=address,undefined
BUILD	?= build-san
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
TEST_DEPS_value    = value util log
TEST_DEPS_mustache = mustache value util log
TEST_DEPS_mime     = mime util log
TEST_DEPS_config   = config util log
TEST_DEPS_clock    = clock util log
TEST_DEPS_spool    = spool util log
TEST_DEPS_smtp     = smtp util log
TEST_DEPS_store    = store clock util log
TEST_DEPS_backoff  = deliver store spool smtp mime clock util log

.PHONY: all check unit-tests demo deps clean install bench valgrind
all: $(BUILD)/followupd

$(BUILD)/followupd: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

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

unit-tests: $(UNIT_BINS)

# `check` and `demo` first install what a fresh Debian lacks (tools/deps.sh
# is quick when nothing is missing), then build in a second make so that the
# pkg-config flags are read after the libraries exist.
check: deps
	@$(MAKE) --no-print-directory all unit-tests
	@BUILD=$(BUILD) PYTHON=$(PYTHON) sh tests/run.sh

valgrind: all unit-tests
	@BUILD=$(BUILD) PYTHON=$(PYTHON) VALGRIND=1 sh tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) PYTHON=$(PYTHON) sh demo/run.sh

deps:
	@sh tools/deps.sh

clean:
	rm -rf build build-san

-include $(OBJS:.o=.d) $(patsubst %,%.d,$(UNIT_BINS))
