# SPDX-License-Identifier: MIT
#
# sluice build. `make` builds everything into build/$(VARIANT)/; `make test`
# runs the unit and integration suites; `make asan|ubsan|tsan` run the same
# suites under sanitizers, each variant in a build directory of its own.

VARIANT ?= release
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PYTHON  ?= /usr/bin/python3

B   := build/$(VARIANT)
GEN := build/gen

ifeq ($(V),1)
Q :=
else
Q := @
endif

IS_CLANG := $(shell $(CC) --version 2>/dev/null | grep -qi clang && echo 1)

WARN := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra \
	-Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wmissing-declarations -Wold-style-definition -Wformat=2 -Wcast-qual \
	-Wcast-align -Wwrite-strings -Wpointer-arith -Wundef -Wvla \
	-Wnull-dereference -Wimplicit-fallthrough -Wswitch-enum \
	-Wredundant-decls -Wnested-externs \
	-Werror=implicit-function-declaration -Werror=incompatible-pointer-types \
	-Werror=return-type
ifneq ($(IS_CLANG),1)
WARN += -Wduplicated-cond -Wduplicated-branches -Wlogical-op -Wjump-misses-init
endif
ifeq ($(WERROR),1)
WARN += -Werror
endif

# Generated headers are system headers: their casts are not ours to fix.
INCS := -Iproto -Idaemon -Iclients/include -Iclients/lib -Iflagd -Iclients/flagctl \
	-Itests/fuzz -isystem $(GEN)

ifeq ($(VARIANT),release)
OPT := -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong
LDOPT := -Wl,-z,relro,-z,now
else ifeq ($(VARIANT),asan)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
LDOPT := -fsanitize=address,undefined
else ifeq ($(VARIANT),ubsan)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=undefined \
	-fno-sanitize-recover=all
LDOPT := -fsanitize=undefined
else ifeq ($(VARIANT),tsan)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
LDOPT := -fsanitize=thread
else ifeq ($(VARIANT),coverage)
OPT := -O0 -g --coverage
LDOPT := --coverage
else
$(error unknown VARIANT $(VARIANT))
endif

CFLAGS_ALL  = $(WARN) $(OPT) -fPIC -MMD -MP $(INCS) $(CFLAGS)
# Generated protobuf-c code is not ours to warn about.
CFLAGS_GEN  = -std=c11 -D_POSIX_C_SOURCE=200809L $(OPT) -fPIC -MMD -MP \
	$(INCS) $(CFLAGS)
LDFLAGS_ALL = $(LDOPT) $(LDFLAGS)

# libslproto's sl_http.o (the daemons' status server) also needs $(LIBS_NNG).
LIBS_PROTO := -lprotobuf-c -lsodium
LIBS_NNG   := -lnng -lpthread
LIBS_FLAGD := -llmdb -lraft -luv $(LIBS_NNG) $(LIBS_PROTO)
LIBS_CTL   := -lyaml -ljansson $(LIBS_NNG) $(LIBS_PROTO)

# ------------------------------------------------------------------ sources

PROTO_SRC  := $(wildcard proto/*.c)
# Shared by the daemons only (LMDB): never part of libsluice.
DAEMON_SRC := $(wildcard daemon/*.c)
LIB_SRC    := $(wildcard clients/lib/*.c)
FLAGD_SRC  := $(filter-out flagd/main.c,$(wildcard flagd/*.c))
CTL_SRC    := $(filter-out clients/flagctl/main.c,$(wildcard clients/flagctl/*.c))

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

GEN_C   := $(GEN)/sluice.pb-c.c
GEN_H   := $(GEN)/sluice.pb-c.h
GEN_OBJ := $(B)/obj/gen/sluice.pb-c.o

PROTO_OBJ := $(call obj,$(PROTO_SRC)) $(GEN_OBJ)
DAEMON_OBJ := $(call obj,$(DAEMON_SRC))
LIB_OBJ   := $(call obj,$(LIB_SRC))
FLAGD_OBJ := $(call obj,$(FLAGD_SRC))
CTL_OBJ   := $(call obj,$(CTL_SRC))

LIBPROTO  := $(B)/libslproto.a
LIBDAEMON := $(B)/libsldaemon.a
LIBSLUICE := $(B)/libsluice.a
LIBSO     := $(B)/libsluice.so.0
FLAGD     := $(B)/flagd
FLAGCTL   := $(B)/flagctl

UNIT_SRC  := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRC))
LIB_UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(wildcard tests/unit/lib/test_*.c))
ITEST_SRC := $(wildcard tests/integration/*.c)
ITEST_BIN := $(patsubst tests/integration/%.c,$(B)/tests/integration/%,$(ITEST_SRC))
# Helpers the integration suite drives (not tests: run-integration.sh runs
# every program in tests/integration/, so these are built elsewhere).
HELPER_SRC := $(wildcard tests/integration/helpers/*.c)
HELPER_BIN := $(patsubst tests/integration/helpers/%.c,$(B)/tests/helpers/%,$(HELPER_SRC))
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(patsubst tests/fuzz/%.c,$(B)/tests/fuzz/replay_%,$(FUZZ_SRC))
# Keep replay objects: make would otherwise delete them as intermediates.
.SECONDARY:
# Helpers the integration suite and deploy/local run (not tests).
TOOLS_SRC := $(wildcard tests/tools/*.c)
TOOLS_BIN := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(TOOLS_SRC))
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRC))

.PHONY: all test check unit integration bench demo install uninstall clean \
	asan ubsan tsan tsan-client unit-lib fuzz coverage format format-check \
	lint deps

all: $(FLAGD) $(FLAGCTL) $(LIBSLUICE) $(LIBSO) $(B)/sluice.pc

# ------------------------------------------------------------------ rules

$(GEN_C) $(GEN_H): proto/sluice.proto
	@mkdir -p $(GEN)
	@echo "  PROTOC  $<"
	$(Q)protoc-c --c_out=$(GEN) --proto_path=proto $<

$(GEN_OBJ): $(GEN_C) $(GEN_H)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_GEN) -c $< -o $@

# The dependency files name headers by path, so a header that moves
# (same name, another directory) would leave objects compiled against the
# old one: every object also depends on the list of headers, a file
# rewritten only when a header is added, moved or removed.
HDR_LIST := $(B)/headers.list
HDR_NOW  := $(sort $(filter-out build/%,$(wildcard */*.h */*/*.h */*/*/*.h)))
$(shell mkdir -p $(B) && (echo '$(HDR_NOW)' | cmp -s - $(HDR_LIST) || \
	echo '$(HDR_NOW)' > $(HDR_LIST)))

$(B)/obj/%.o: %.c $(GEN_H) $(HDR_LIST)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

$(LIBPROTO): $(PROTO_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBDAEMON): $(DAEMON_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBSLUICE): $(LIB_OBJ) $(PROTO_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBSO): $(LIB_OBJ) $(PROTO_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) -shared -Wl,-soname,libsluice.so.0 $(LDFLAGS_ALL) -o $@ $^ \
		$(LIBS_NNG) $(LIBS_PROTO)
	$(Q)ln -sf libsluice.so.0 $(B)/libsluice.so

$(B)/sluice.pc: clients/lib/sluice.pc.in
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' $< > $@

$(FLAGD): $(call obj,flagd/main.c) $(FLAGD_OBJ) $(LIBDAEMON) $(LIBPROTO)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_FLAGD)

$(FLAGCTL): $(call obj,clients/flagctl/main.c) $(CTL_OBJ) $(LIBSLUICE)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_CTL)

# Unit tests link every object of the component they test, so a test may
# reach any module (main.c excluded).
$(B)/tests/unit/proto/%: $(B)/obj/tests/unit/proto/%.o $(LIBPROTO)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcmocka $(LIBS_PROTO) $(LIBS_NNG)

$(B)/tests/unit/lib/%: $(B)/obj/tests/unit/lib/%.o $(LIBSLUICE)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcmocka -ljansson $(LIBS_NNG) $(LIBS_PROTO)

$(B)/tests/unit/flagd/%: $(B)/obj/tests/unit/flagd/%.o $(FLAGD_OBJ) $(LIBDAEMON) $(LIBPROTO)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcmocka $(LIBS_FLAGD)

$(B)/tests/unit/flagctl/%: $(B)/obj/tests/unit/flagctl/%.o $(CTL_OBJ) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcmocka $(LIBS_CTL)

$(B)/tests/integration/%: $(B)/obj/tests/integration/%.o $(LIBSLUICE)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcmocka $(LIBS_CTL)

$(B)/tests/helpers/%: $(B)/obj/tests/integration/helpers/%.o $(LIBSLUICE)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_NNG) $(LIBS_PROTO)

$(B)/tests/fuzz/replay_%: $(B)/obj/tests/fuzz/%.o $(B)/obj/tests/fuzz/replay_main.o $(CTL_OBJ) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_CTL)

$(B)/tests/tools/%: $(B)/obj/tests/tools/%.o $(LIBSLUICE)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_CTL)

$(B)/bench/%: $(B)/obj/bench/%.o $(LIBSLUICE)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_CTL) -lm

# etcd's watchers speak HTTP through libcurl (installed by make bench).
$(B)/bench/bench_etcd_watch: $(B)/obj/bench/bench_etcd_watch.o $(LIBSLUICE)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_CTL) -lcurl -lm

# ------------------------------------------------------------------ gatekeeper
# gatekeeper: reports, gates, decisions. Its objects are linked the way
# flagd's are (main.c apart, so unit tests may reach every module).

INCS       += -Igatekeeper
GK_SRC     := $(filter-out gatekeeper/main.c,$(wildcard gatekeeper/*.c))
GK_OBJ     := $(call obj,$(GK_SRC))
GATEKEEPER := $(B)/gatekeeper
LIBS_GK    := -llmdb $(LIBS_NNG) $(LIBS_PROTO) -lm

all: $(GATEKEEPER)
install: install-gatekeeper
uninstall: uninstall-gatekeeper
.PHONY: install-gatekeeper uninstall-gatekeeper

install-gatekeeper: $(GATEKEEPER)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(GATEKEEPER) $(DESTDIR)$(PREFIX)/bin/

uninstall-gatekeeper:
	rm -f $(DESTDIR)$(PREFIX)/bin/gatekeeper

$(GATEKEEPER): $(call obj,gatekeeper/main.c) $(GK_OBJ) $(LIBDAEMON) $(LIBSLUICE)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_GK)

# gatekeeper's fuzz targets (fuzz_gk_*) link its objects; the shorter stem
# makes this rule win over the generic replay rule.
$(B)/tests/fuzz/replay_fuzz_gk_%: $(B)/obj/tests/fuzz/fuzz_gk_%.o $(B)/obj/tests/fuzz/replay_main.o $(GK_OBJ) $(LIBDAEMON) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_GK)

$(B)/tests/unit/gatekeeper/%: $(B)/obj/tests/unit/gatekeeper/%.o $(GK_OBJ) $(LIBDAEMON) $(LIBSLUICE)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS_ALL) $(GK_TEST_LDFLAGS) -o $@ $^ -lcmocka $(LIBS_GK)

# test_core makes chosen LMDB commits fail (a failed group commit).
$(B)/tests/unit/gatekeeper/test_core: GK_TEST_LDFLAGS := -Wl,--wrap=mdb_txn_commit

# ------------------------------------------------------------------ targets

deps:
	@./scripts/deps.sh

unit: $(UNIT_BIN)
	@./tests/run-unit.sh $(B) $(UNIT_BIN)

integration: all $(ITEST_BIN) $(HELPER_BIN) $(FUZZ_REPLAY) $(TOOLS_BIN)
	@./tests/run-integration.sh $(B)

test check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN) $(ITEST_BIN) $(HELPER_BIN) \
		$(FUZZ_REPLAY) $(TOOLS_BIN)
	@./tests/run-unit.sh $(B) $(UNIT_BIN)
	@./tests/run-integration.sh $(B)

# The client library's unit tests alone (its threads: evaluators, updater).
unit-lib: $(LIB_UNIT_BIN)
	@./tests/run-unit.sh $(B) $(LIB_UNIT_BIN)

tsan-client: deps
	@$(MAKE) --no-print-directory VARIANT=tsan unit-lib

asan:
	@$(MAKE) --no-print-directory VARIANT=asan test
ubsan:
	@$(MAKE) --no-print-directory VARIANT=ubsan test
tsan:
	@$(MAKE) --no-print-directory VARIANT=tsan test
coverage:
	@$(MAKE) --no-print-directory VARIANT=coverage test

# The replication bench compares with etcd: Debian's etcd-server 3.4,
# installed for the bench only (tests never need it).
bench:
	@./scripts/deps.sh etcd-server etcd-client libcurl4-openssl-dev
	@$(MAKE) --no-print-directory all $(BENCH_BIN) $(TOOLS_BIN)
	@./bench/run.sh $(B)

demo: deps
	@$(MAKE) --no-print-directory all
	@./examples/demo.sh $(B)

fuzz:
	@./tests/fuzz/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
		$(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(FLAGD) $(FLAGCTL) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(LIBSLUICE) $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(LIBSO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libsluice.so.0 $(DESTDIR)$(PREFIX)/lib/libsluice.so
	install -m 0644 clients/include/sluice.h $(DESTDIR)$(PREFIX)/include/
	install -m 0644 $(B)/sluice.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/flagd $(DESTDIR)$(PREFIX)/bin/flagctl \
		$(DESTDIR)$(PREFIX)/lib/libsluice.a \
		$(DESTDIR)$(PREFIX)/lib/libsluice.so.0 \
		$(DESTDIR)$(PREFIX)/lib/libsluice.so \
		$(DESTDIR)$(PREFIX)/include/sluice.h \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig/sluice.pc

clean:
	rm -rf build

FORMAT_FILES = $(shell git ls-files '*.c' '*.h')

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

lint:
	cppcheck --quiet --enable=warning,performance --error-exitcode=1 \
		$(INCS) proto daemon clients flagd gatekeeper

-include $(shell find build/$(VARIANT) -name '*.d' 2>/dev/null)
