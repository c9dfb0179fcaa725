# gatehouse: an OpenID Connect authentication gateway.
# Targets: all (build/gatehouse), deps, test, unit, integration, asan,
# check-sample, check-exports, check-includes, format, format-check, demo, run, bench,
# fuzz, image, clean.

BUILD    ?= build
CC       ?= cc
PKGS      = libevent libevent_pthreads libevent_openssl libcurl jansson \
	    openssl lmdb cjose hiredis
WARN      = -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
	    -Wmissing-declarations -Wshadow -Wpointer-arith -Wformat=2
CFLAGS   ?= -O2 -g
SANFLAGS ?=
PYTHON    = /usr/bin/python3
VERSION   = 0.1.0

# Debian packages the build, the tests and the demo need.
DEB_BUILD = build-essential pkg-config libevent-dev libcurl4-openssl-dev \
	    libjansson-dev libssl-dev liblmdb-dev libcjose-dev libhiredis-dev
DEB_TEST  = python3 python3-pytest python3-requests python3-cryptography \
	    lmdb-utils curl procps nginx-light chromium clang-format systemd \
	    redis-server redis-sentinel $(DEB_IMAGE)
# The container image (make image, and its tests): podman with runc (see
# tests/integration/podman.py for why not crun), catatonit for the pods'
# infra containers, mmdebstrap to make the debian:bookworm-slim base from
# Debian's mirror where no image registry is reachable.
DEB_IMAGE = podman runc catatonit mmdebstrap
# The demo runs on Python's standard library and the Node.js OpenID
# Provider: none of the test tools (pytest, Chromium, nginx).
DEB_DEMO  = python3
# Node.js and npm (for the demo's OpenID Provider) are checked by command,
# since a nodesource install provides them without Debian's npm package.
# What `deps` installs besides the build: the tests' tools unless the goal
# asks for less (demo, run) or more (bench).
DEB_FOR   = $(DEB_TEST)

SRCS_GATEWAY  = $(wildcard gateway/*.c gateway/*/*.c)
SRCS_POLICIES = $(wildcard policies/*.c)
SRCS_STORAGE  = $(wildcard storage/*.c)
SRCS = $(SRCS_GATEWAY) $(SRCS_POLICIES) $(SRCS_STORAGE)
HDRS = $(wildcard gateway/*.h gateway/*/*.h policies/*.h storage/*.h)
OBJS = $(patsubst %.c,$(BUILD)/%.o,$(SRCS))
LIBOBJS = $(filter-out $(BUILD)/gateway/main.o,$(OBJS))

UNIT_SRCS = $(wildcard tests/unit/*/*_test.c tests/unit/*/*/*_test.c)
UNIT_BINS = $(patsubst %.c,$(BUILD)/%,$(UNIT_SRCS))

# Small programs that drive one module for an integration test (which
# finds them beside the gatehouse it runs, under tests/drivers/).
DRIVER_SRCS = $(wildcard tests/drivers/*.c)
DRIVER_BINS = $(patsubst %.c,$(BUILD)/%,$(DRIVER_SRCS))

# libFuzzer targets, also replayed on their corpora by `make unit`.
FUZZ_SRCS   = $(wildcard tests/fuzz/*_fuzz.c)
FUZZ_NAMES  = $(patsubst tests/fuzz/%_fuzz.c,%,$(FUZZ_SRCS))
FUZZ_REPLAY = $(patsubst %,$(BUILD)/tests/fuzz/%_replay,$(FUZZ_NAMES))


PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(CFLAGS) $(SANFLAGS) $(WARN) -std=gnu11 -D_GNU_SOURCE \
	     -DGATEHOUSE_VERSION='"$(VERSION)"' -Igateway -Ipolicies \
	     -Istorage $(PKG_CFLAGS) -MMD -MP
LDLIBS = $(PKG_LIBS) -lpthread

.PHONY: all deps test unit integration asan check-sample format \
	format-check demo run bench image clean

all: $(BUILD)/gatehouse

$(BUILD)/gatehouse: $(OBJS)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIBOBJS)
	@mkdir -p $(dir $@)
	@echo "  CCLD    $@"
	@$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(LIBOBJS) $(LDLIBS)

$(BUILD)/tests/drivers/%: tests/drivers/%.c $(LIBOBJS)
	@mkdir -p $(dir $@)
	@echo "  CCLD    $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS)

-include $(OBJS:.o=.d) $(UNIT_BINS:=.d) $(DRIVER_BINS:=.d)

# Install what is missing, and only that (a fresh Debian 12 needs it all).
deps:
	@missing=""; for p in $(DEB_BUILD) $(DEB_FOR) $(DEB_EXTRA); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
		    grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || \
	    missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
		    --no-install-recommends $$missing; \
	fi

unit: $(UNIT_BINS) $(FUZZ_REPLAY)
	prove -e '' $(UNIT_BINS)
	@$(FUZZ_REPLAY_RUN)

# The C unit tests alone, without the integration suite.
.PHONY: check-exports check-includes drivers

drivers: $(DRIVER_BINS)

integration: $(BUILD)/gatehouse $(DRIVER_BINS)
	GATEHOUSE_BIN=$(abspath $(BUILD)/gatehouse) \
	GATEHOUSE_SANITIZED=$(if $(SANFLAGS),1,0) $(PYTHON) -m pytest -q \
	    -p no:cacheprovider tests/integration $(PYTEST_ARGS)

check-sample: $(BUILD)/gatehouse
	$(BUILD)/gatehouse -c gateway.conf.sample --check

format:
	clang-format -i $(SRCS) $(HDRS) $(UNIT_SRCS) $(DRIVER_SRCS) \
	    $(FUZZ_SRCS) tests/fuzz/replay_main.c tests/fuzz/fuzz.h

format-check:
	clang-format --dry-run --Werror $(SRCS) \
	    $(HDRS) $(UNIT_SRCS) $(DRIVER_SRCS) \
	    $(FUZZ_SRCS) tests/fuzz/replay_main.c tests/fuzz/fuzz.h

# The whole suite, and again under ASan and UBSan in build/asan: both
# trees are built and unit-tested first, then the two integration runs go
# side by side (they are independent: free ports, their own temporary
# directories; most of their time is spent waiting on processes they
# started, so two runs on two cores take little longer than one).  Each
# run's output goes to its log, shown whole when it ends.
ASAN_MAKE = $(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	    SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all"
test: deps
	$(MAKE) format-check
	$(MAKE) -j2 all drivers
	$(MAKE) unit check-sample check-exports check-includes
	$(ASAN_MAKE) -j2 all drivers
	$(ASAN_MAKE) unit
	@mkdir -p $(BUILD)/test-output; \
	plain=$(BUILD)/test-output/integration.log; \
	asan=$(BUILD)/test-output/integration-asan.log; \
	echo "integration (plain and ASan side by side): $$plain $$asan"; \
	$(MAKE) integration > $$plain 2>&1 & p=$$!; \
	$(ASAN_MAKE) integration PYTEST_ARGS="$(ASAN_PYTEST_ARGS)" \
	    > $$asan 2>&1 & a=$$!; \
	wait $$p; prc=$$?; echo "=== integration (plain), exit $$prc"; \
	cat $$plain; \
	wait $$a; arc=$$?; echo "=== integration (ASan/UBSan), exit $$arc"; \
	cat $$asan; \
	test $$prc -eq 0 && test $$arc -eq 0

check-exports: $(BUILD)/gatehouse
	tests/check_exports.sh $(BUILD)

check-includes:
	tests/check_includes.sh .

asan:
	$(ASAN_MAKE) all unit integration PYTEST_ARGS="$(ASAN_PYTEST_ARGS)"

demo run: DEB_FOR = $(DEB_DEMO)

# make demo UPSTREAM=http://127.0.0.1:8000 puts the demo in front of your
# own app instead of examples/upstream-app; make run does the same with the
# real tenant of .env.
demo: deps all
	$(PYTHON) examples/demo.py $(if $(UPSTREAM),--upstream $(UPSTREAM))

run: deps all
	$(PYTHON) examples/demo.py --tenant $(if $(UPSTREAM),--upstream $(UPSTREAM))

# Benchmarks only: the peers gatehouse is measured against.
DEB_BENCH = wrk apache2 libapache2-mod-auth-openidc redis-server valgrind
bench: DEB_EXTRA = $(DEB_BENCH)
bench: deps all
	$(PYTHON) bench/bench.py $(BENCH_ARGS)
	$(PYTHON) bench/ws_bench.py $(WS_BENCH_ARGS)

# The container image (Containerfile) as $(IMAGE), built with podman
# (`docker build -f Containerfile -t gatehouse .` works the same);
# tests/integration/podman.py holds the flags these machines need and makes
# the base image when it is missing.
IMAGE ?= localhost/gatehouse:latest
image: DEB_FOR = $(DEB_IMAGE) python3
image: deps
	$(PYTHON) tests/integration/podman.py image --tag $(IMAGE)

clean:
	rm -rf $(BUILD)

# --- fuzzing (tests/fuzz) --------------------------------------------------
# Each tests/fuzz/<name>_fuzz.c defines LLVMFuzzerTestOneInput.  It is built
# twice: as <name>_replay (gcc, the normal flags, tests/fuzz/replay_main.c),
# which `make unit` runs on its seed corpus as a TAP test; and as <name>_fuzz
# (clang, libFuzzer), which `make fuzz` runs for FUZZ_SECONDS on a scratch
# copy of the corpus.

# The seed corpora of each target.
FUZZ_CORPUS_callback = tests/corpus/callback tests/corpus/redirect
FUZZ_CORPUS_config   = tests/corpus/config
FUZZ_CORPUS_cookie   = tests/corpus/cookie
FUZZ_CORPUS_forward_auth = tests/corpus/forward_auth
FUZZ_CORPUS_http1    = tests/corpus/http1
FUZZ_CORPUS_jwt      = tests/corpus/jwt tests/corpus/jwks tests/corpus/claims
FUZZ_CORPUS_path     = tests/corpus/path tests/corpus/route

# make fuzz FUZZ_SECONDS=600 FUZZ_FLAGS="-fork=1 -ignore_crashes=1"; -j2
# runs two targets at once.  Needs clang and libclang-rt-14-dev.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   ?=
FUZZ_CC      ?= clang
FUZZ_BUILD    = $(BUILD)/fuzz
# No -Werror here: a clang-only warning elsewhere must not stop fuzzing.
FUZZ_CFLAGS   = -O1 -g -fno-omit-frame-pointer \
		-fsanitize=address,undefined -fno-sanitize-recover=undefined \
		$(filter-out -Werror,$(WARN)) -std=gnu11 -D_GNU_SOURCE \
		-DGATEHOUSE_VERSION='"$(VERSION)"' -Igateway -Ipolicies \
		-Istorage $(PKG_CFLAGS) -MMD -MP
FUZZ_OBJS = $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(filter-out gateway/main.c,$(SRCS)))
FUZZ_BINS = $(patsubst %,$(FUZZ_BUILD)/%_fuzz,$(FUZZ_NAMES))

$(BUILD)/tests/fuzz/%_replay: tests/fuzz/%_fuzz.c \
    $(BUILD)/tests/fuzz/replay_main.o $(LIBOBJS)
	@mkdir -p $(dir $@)
	@echo "  CCLD    $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/tests/fuzz/replay_main.o \
	    $(LIBOBJS) $(LDLIBS)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/%_fuzz: tests/fuzz/%_fuzz.c $(FUZZ_OBJS)
	@echo "  CCLD    $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) \
	    $(LDLIBS)

# Named in explicit rules, so make keeps them (not intermediate files).
$(FUZZ_REPLAY): $(BUILD)/tests/fuzz/replay_main.o
$(FUZZ_BINS): $(FUZZ_OBJS)

-include $(FUZZ_REPLAY:=.d) $(BUILD)/tests/fuzz/replay_main.d \
    $(FUZZ_OBJS:.o=.d) $(FUZZ_BINS:=.d)

.PHONY: fuzz fuzz-replay
fuzz: $(addprefix fuzz-,$(FUZZ_NAMES))

# One target: seeds copied (prefixed by their corpus) into a scratch dir
# that libFuzzer may grow; run in an empty working dir with a clean
# environment; crashes land in $(FUZZ_BUILD)/artifacts/<name>/.
fuzz-%: $(FUZZ_BUILD)/%_fuzz
	@rm -rf $(FUZZ_BUILD)/corpus/$* $(FUZZ_BUILD)/work/$*
	@mkdir -p $(FUZZ_BUILD)/corpus/$* $(FUZZ_BUILD)/work/$* \
	    $(FUZZ_BUILD)/artifacts/$*
	@for d in $(FUZZ_CORPUS_$*); do for f in $$d/*; do \
		cp "$$f" "$(FUZZ_BUILD)/corpus/$*/$$(basename $$d)-$$(basename $$f)"; \
	done; done
	cd $(FUZZ_BUILD)/work/$* && env -i PATH=/usr/bin:/bin \
	    TMPDIR=$(abspath $(FUZZ_BUILD)/work/$*) \
	    ASAN_OPTIONS=detect_leaks=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(abspath $<) -max_total_time=$(FUZZ_SECONDS) -timeout=25 \
	    -rss_limit_mb=2048 -print_final_stats=1 $(FUZZ_FLAGS) \
	    -artifact_prefix=$(abspath $(FUZZ_BUILD)/artifacts/$*)/ \
	    $(abspath $(FUZZ_BUILD)/corpus/$*)

# Replay each target's seed corpus as a TAP test (every target, then fail
# if any failed); `make unit` runs it after the unit tests.
FUZZ_REPLAY_RUN = rc=0; $(foreach n,$(FUZZ_NAMES),prove -e '' \
	$(BUILD)/tests/fuzz/$(n)_replay :: $(FUZZ_CORPUS_$(n)) || rc=1;) \
	exit $$rc

fuzz-replay: $(FUZZ_REPLAY)
	@$(FUZZ_REPLAY_RUN)
