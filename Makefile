# qtpm top-level Makefile. Objects and binaries go to $(BUILD) (out of tree).
# Sources are found by directory, so a new file in a listed folder is built
# without touching this file.

BUILD ?= build
SRC_PATH := $(CURDIR)

.PHONY: install-swtpm-compat all check check-unit check-fuzz check-qtest check-interop check-libvirt check-sanitizers demo install clean deps bench

all:

# Read only once configure has run, so that targets such as deps never run
# configure before the packages it looks for are installed.
ifneq ($(wildcard $(BUILD)/config-host.mak),)
include $(BUILD)/config-host.mak
endif

# A changed configure (a new library) configures the build again with the
# arguments it was first given.
$(BUILD)/config-host.mak: configure
	if [ -x $(BUILD)/config.status ]; then $(BUILD)/config.status; \
	else ./configure --builddir=$(BUILD); fi

CFLAGS_ALL = $(QEMU_CFLAGS) -I$(SRC_PATH)/include -I$(BUILD) -MMD -MP

LIB_DIRS := util crypto block nvram hw/core hw/tpm backends/tpm manufacture export/swtpm migration monitor system
LIB_SRCS := $(filter-out system/main.c,$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
LIBQTPM := $(BUILD)/libqtpm.a

TOOL_SRCS := $(wildcard tools/*.c)
TOOLS := $(patsubst tools/%.c,$(BUILD)/%,$(TOOL_SRCS))
QTPM := $(BUILD)/qtpm

UNIT_SRCS := $(wildcard tests/unit/test-*.c)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
QTEST_SRCS := $(wildcard tests/qtest/test-*.c)
QTEST_TESTS := $(patsubst tests/qtest/%.c,$(BUILD)/tests/qtest/%,$(QTEST_SRCS))
LIBQTEST_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(QTEST_SRCS),$(wildcard tests/qtest/*.c)))
TESTLIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c)))

# The swtpm-compatible front doors (docs/swtpm-compat.md): one program per
# name libvirt looks for, sharing the option parsers in swtpm-compat-*.c.
COMPAT_PROGS := swtpm swtpm_setup swtpm_ioctl
COMPAT_DIR := $(BUILD)/swtpm-compat
COMPAT_BINS := $(addprefix $(COMPAT_DIR)/,$(COMPAT_PROGS))
COMPAT_LIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/swtpm-compat/swtpm-compat-*.c))
bindir ?= $(prefix)/bin
libexecdir ?= $(prefix)/libexec
COMPAT_CFLAGS = -DQTPM_COMPAT_BINDIR='"$(bindir)"' \
    -DQTPM_COMPAT_BUILD_DIR='"$(abspath $(BUILD))"'

# libFuzzer targets (docs/fuzzing.md): built only in a build configured with
# --enable-fuzzing, by default build-fuzz (make fuzz-build).
FUZZ_BUILD ?= build-fuzz
FUZZ_SRCS := $(filter-out tests/fuzz/fuzz-util.c,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/fuzz/%,$(FUZZ_SRCS))
FUZZ_UTIL_OBJ := $(BUILD)/tests/fuzz/fuzz-util.o
FUZZ_TIME ?= 60
FUZZ_CHECK_TIME ?= 10

ALL_BINS := $(if $(wildcard system/main.c),$(QTPM)) $(TOOLS) $(COMPAT_BINS) $(UNIT_TESTS) $(QTEST_TESTS)

all: $(BUILD)/config-host.mak
	@$(MAKE) --no-print-directory build-all

.PHONY: build-all
build-all: $(ALL_BINS)

$(BUILD)/%.o: %.c $(BUILD)/config-host.mak
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(LIBQTPM): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(QTPM): $(BUILD)/system/main.o $(LIBQTPM)
	$(CC) $(QEMU_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/qtpm-%: $(BUILD)/tools/qtpm-%.o $(LIBQTPM)
	$(CC) $(QEMU_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tools/swtpm-compat/%.o: tools/swtpm-compat/%.c $(BUILD)/config-host.mak
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(COMPAT_CFLAGS) -c -o $@ $<

$(COMPAT_DIR)/%: $(BUILD)/tools/swtpm-compat/%.o $(COMPAT_LIB_OBJS) $(LIBQTPM)
	@mkdir -p $(dir $@)
	$(CC) $(QEMU_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/unit/test-swtpm-compat: $(BUILD)/tests/unit/test-swtpm-compat.o $(COMPAT_LIB_OBJS) $(TESTLIB_OBJS) $(LIBQTPM)
	$(CC) $(QEMU_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/unit/test-%: $(BUILD)/tests/unit/test-%.o $(TESTLIB_OBJS) $(LIBQTPM)
	$(CC) $(QEMU_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/qtest/test-%: $(BUILD)/tests/qtest/test-%.o $(LIBQTEST_OBJS) $(LIBQTPM)
	$(CC) $(QEMU_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/fuzz/fuzz-swtpm-compat: $(BUILD)/tests/fuzz/fuzz-swtpm-compat.o $(FUZZ_UTIL_OBJ) $(COMPAT_LIB_OBJS) $(LIBQTPM)
	$(CC) $(QEMU_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

$(BUILD)/tests/fuzz/fuzz-%: $(BUILD)/tests/fuzz/fuzz-%.o $(FUZZ_UTIL_OBJ) $(LIBQTPM)
	$(CC) $(QEMU_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------------------
# Tests. Every test speaks TAP; tests/run.sh counts and prints the last line
# "N passed, N failed".

deps:
	@scripts/install-deps.sh

check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=build-san all-san
	@$(MAKE) --no-print-directory fuzz-corpus
	@FUZZ_CHECK_TIME=$(FUZZ_CHECK_TIME) tests/run.sh --build $(BUILD) --san-build build-san \
	    --fuzz-build $(FUZZ_BUILD) all

check-unit: deps all
	@tests/run.sh --build $(BUILD) unit

check-qtest: deps all
	@tests/run.sh --build $(BUILD) qtest

check-interop: deps all
	@tests/run.sh --build $(BUILD) interop

check-libvirt: deps all
	@tests/run.sh --build $(BUILD) libvirt

check-sanitizers: deps
	@$(MAKE) --no-print-directory BUILD=build-san all-san
	@tests/run.sh --build $(BUILD) --san-build build-san sanitizers

# The fuzz build: clang with ASan, UBSan and libFuzzer's coverage in every
# object of libqtpm; the targets link libFuzzer's main.
.PHONY: fuzz fuzz-build fuzz-targets fuzz-corpus check-fuzz
fuzz-build:
	@test -x $(FUZZ_BUILD)/config.status || ./configure --builddir=$(FUZZ_BUILD) \
	    --cc=clang --enable-sanitizers --enable-fuzzing >/dev/null
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) fuzz-targets

fuzz-targets: $(BUILD)/config-host.mak
	@test "$(CONFIG_FUZZING)" = yes || { echo "make: $(BUILD) is not configured with --enable-fuzzing" >&2; exit 1; }
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS)

# Seed corpora made by real programs (qemu-img, qemu-io, qtpm-img, swtpm_setup,
# QEMU 7.2), into $(FUZZ_BUILD)/corpus; needs the normal build's tools.
fuzz-corpus: fuzz-build all
	@tests/fuzz/make-corpus.sh $(BUILD) $(FUZZ_BUILD)/corpus

# Each target for FUZZ_TIME seconds, one after another, over its corpora.
fuzz: fuzz-corpus
	@tests/fuzz/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_TIME)

check-fuzz: deps fuzz-corpus
	@FUZZ_CHECK_TIME=$(FUZZ_CHECK_TIME) tests/run.sh --fuzz-build $(FUZZ_BUILD) fuzz

# The sanitizer build lives in its own folder and runs the hostile-input tests.
.PHONY: all-san
all-san:
	@test -x build-san/config.status || ./configure --builddir=build-san --enable-sanitizers --enable-debug >/dev/null
	@$(MAKE) --no-print-directory BUILD=build-san build-all

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(BUILD)

bench: deps all
	@bench/run.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(prefix)/bin
	install -m 0755 $(QTPM) $(TOOLS) $(DESTDIR)$(prefix)/bin/

# The external way for libvirt (docs/libvirt.md): the instance script, the
# systemd template unit (its ExecStart pointed at this prefix) and a sample
# instance config with the docs.
prefix ?= /usr/local
SYSTEMD_UNIT_DIR ?= $(prefix)/lib/systemd/system
QTPM_DOC_DIR = $(prefix)/share/doc/qtpm
.PHONY: install-instance
install: install-instance
install-instance:
	install -d $(DESTDIR)$(prefix)/bin $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(QTPM_DOC_DIR)
	install -m 0755 contrib/qtpm-instance $(DESTDIR)$(prefix)/bin/
	sed -e 's|/usr/bin/qtpm-instance|$(prefix)/bin/qtpm-instance|' \
	    -e 's|/usr/share/doc/qtpm|$(QTPM_DOC_DIR)|' contrib/systemd/qtpm@.service \
	    >$(DESTDIR)$(SYSTEMD_UNIT_DIR)/qtpm@.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/qtpm@.service
	install -m 0644 contrib/qtpm-sample.conf docs/libvirt.md $(DESTDIR)$(QTPM_DOC_DIR)/

# The front doors go into a directory of their own, which a user puts first
# on libvirtd's PATH to opt in (docs/swtpm-compat.md).
install: install-swtpm-compat
install-swtpm-compat: all
	install -d $(DESTDIR)$(libexecdir)/qtpm/swtpm
	install -m 0755 $(COMPAT_BINS) $(DESTDIR)$(libexecdir)/qtpm/swtpm/

clean:
	rm -rf build build-san $(FUZZ_BUILD)
