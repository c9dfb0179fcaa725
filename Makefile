# gatehouse: an OpenID Connect authentication gateway.
# Targets: all (build/gatehouse), deps, test, unit, integration, asan,
# check-sample, format, format-check, demo, run, bench, clean.

BUILD    ?= build
CC       ?= cc
PKGS      = libevent libevent_pthreads libcurl jansson openssl lmdb cjose
WARN      = -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
	    -Wmissing-declarations -Wshadow -Wpointer-arith -Wformat=2
CFLAGS   ?= -O2 -g
SANFLAGS ?=
PYTHON    = /usr/bin/python3
VERSION   = 0.1.0

# Debian packages the build, the tests and the demo need.
DEB_BUILD = build-essential pkg-config libevent-dev libcurl4-openssl-dev \
	    libjansson-dev libssl-dev liblmdb-dev libcjose-dev clang-format
DEB_TEST  = python3 python3-pytest python3-requests python3-cryptography \
	    lmdb-utils curl procps nginx-light chromium
# Node.js and npm (for the demo's OpenID Provider) are checked by command,
# since a nodesource install provides them without Debian's npm package.

SRCS_GATEWAY  = $(wildcard gateway/*.c)
SRCS_POLICIES = $(wildcard policies/*.c)
SRCS_STORAGE  = $(wildcard storage/*.c)
SRCS = $(SRCS_GATEWAY) $(SRCS_POLICIES) $(SRCS_STORAGE)
OBJS = $(patsubst %.c,$(BUILD)/%.o,$(SRCS))
LIBOBJS = $(filter-out $(BUILD)/gateway/main.o,$(OBJS))

UNIT_SRCS = $(wildcard tests/unit/*/*_test.c)
UNIT_BINS = $(patsubst %.c,$(BUILD)/%,$(UNIT_SRCS))

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(CFLAGS) $(SANFLAGS) $(WARN) -std=gnu11 -D_GNU_SOURCE \
	     -DGATEHOUSE_VERSION='"$(VERSION)"' -Igateway -Ipolicies \
	     -Istorage $(PKG_CFLAGS) -MMD -MP
LDLIBS = $(PKG_LIBS) -lpthread

.PHONY: all deps test unit integration asan check-sample format \
	format-check demo run bench clean

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

-include $(OBJS:.o=.d) $(UNIT_BINS:=.d)

# Install what is missing, and only that (a fresh Debian 12 needs it all).
deps:
	@missing=""; for p in $(DEB_BUILD) $(DEB_TEST) $(DEB_EXTRA); do \
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

unit: $(UNIT_BINS)
	prove -e '' $(UNIT_BINS)

# The C unit tests alone, without the integration suite.
.PHONY: check-exports

integration: $(BUILD)/gatehouse
	GATEHOUSE_BIN=$(abspath $(BUILD)/gatehouse) \
	GATEHOUSE_SANITIZED=$(if $(SANFLAGS),1,0) $(PYTHON) -m pytest -q \
	    -p no:cacheprovider tests/integration $(PYTEST_ARGS)

check-sample: $(BUILD)/gatehouse
	$(BUILD)/gatehouse -c gateway.conf.sample --check

format:
	clang-format -i $(SRCS) $(wildcard gateway/*.h policies/*.h storage/*.h) $(UNIT_SRCS)

format-check:
	clang-format --dry-run --Werror $(SRCS) \
	    $(wildcard gateway/*.h policies/*.h storage/*.h) $(UNIT_SRCS)

# The whole suite, then again under ASan and UBSan in build/asan.
test: deps
	$(MAKE) format-check
	$(MAKE) all unit check-sample check-exports integration
	$(MAKE) asan

check-exports: $(BUILD)/gatehouse
	tests/check_exports.sh $(BUILD)

asan:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	    SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
	    all unit integration PYTEST_ARGS="$(ASAN_PYTEST_ARGS)"

demo: deps all
	$(PYTHON) examples/demo.py

run: deps all
	$(PYTHON) examples/demo.py --tenant

# Benchmarks only: the peers gatehouse is measured against.
DEB_BENCH = wrk apache2 libapache2-mod-auth-openidc
bench: DEB_EXTRA = $(DEB_BENCH)
bench: deps all
	$(PYTHON) bench/bench.py

clean:
	rm -rf $(BUILD)
