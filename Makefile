# portmapd: build, run, test, benchmark, fuzz and install.
#
#   make run    build the daemon and run it in the foreground (root: port 111)
#   make test   install what the tests need (Debian packages, Go modules) and run them all

GO       ?= go
PREFIX   ?= /usr/local
DESTDIR  ?=
BIN      := bin/portmapd
BENCHBIN := bin/portmapd-bench
FUZZTIME ?= 30s
# Packages the tests drive: the real rpcbind and rpcinfo as the oracle,
# libtirpc for C clients, nfs-common for rpc.statd, iproute2/util-linux
# for namespaces, nftables for the firewalls of probe's topologies.
TEST_DEBS := rpcbind nfs-common libtirpc-dev gcc iproute2 util-linux nftables e2fsprogs
# VERSION is what `portmapd --version` prints and the package's version:
# a Debian-valid string from the commit count and hash of this checkout.
VERSION  ?= $(shell n=$$(git rev-list --count HEAD 2>/dev/null) && h=$$(git rev-parse --short HEAD) && echo 0.9.0+git$$n.$$h || echo 0.9.0)
LDFLAGS  := -X github.com/portmapd/portmapd/internal/cli.Version=$(VERSION)

.PHONY: build run test deps vet bench gobench loadbench fuzz lint install deb clean

# The daemon is built without cgo: a static binary maps no libc and no
# dynamic loader, 1.4 MB less resident memory; nothing in it needs cgo
# (users and hosts resolve through Go's own /etc files readers). The load
# generator is a program of its own, so the daemon does not link it.
build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/portmapd
	CGO_ENABLED=0 $(GO) build -o $(BENCHBIN) ./cmd/portmapd-bench

run: build
	$(abspath $(BIN)) serve

test: deps vet
	$(GO) test -race -timeout 30m -count=1 ./...

# --nft-set's tests (internal/e2e nftset_test.go): nfs-kernel-server for
# rpc.mountd (run without nfsd; its units are disabled after the install),
# curl to scrape metrics inside a namespace.
TEST_DEBS += nfs-kernel-server curl

# deps installs the Debian packages the tests need without letting the
# install start rpcbind on this machine's port 111: a policy-rc.d forbids
# service starts during the install, and whatever systemd enabled is
# stopped and disabled after it.
deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then \
			echo "installing:$$missing"; \
			own_policy=0; \
			if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own_policy=1; fi; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; rc=$$?; \
			[ $$own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d; \
			if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then \
				systemctl disable --now rpcbind.socket rpcbind.service rpc-statd.service \
					nfs-server.service nfs-mountd.service nfs-ganesha.service nfs-ganesha-lock.service >/dev/null 2>&1 || true; fi; \
			[ $$rc = 0 ] || exit $$rc; \
		fi; \
	else echo "not root or no apt-get: tests that need rpcbind, libtirpc or namespaces will skip"; fi
	$(GO) mod download

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

# bench runs the Go benchmarks, then the load comparison: portmapd and, if
# installed, Debian's rpcbind, each the port-111 portmapper of a private
# namespace, through the same loads (portmapd-bench compare -h). It needs
# root and takes about five minutes on two cores, most of it rpcbind taking
# 100,000 registrations; the storms (a new connection per call, 64 and 512
# clients, beside a minimal responder) take about a minute and a half of it. BENCH_ARGS overrides the comparison's settings,
# e.g. BENCH_ARGS="--registrations 10,10000 --duration 5s". A portmapd
# whose serve lacks --warm-start gets a note instead of a warm-start row.
BENCH_ARGS ?= --duration 2s --fresh-duration 3s --portmapd-warm-args=--warm-start

bench: gobench loadbench

gobench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

loadbench: build
	@if [ "$$(id -u)" != 0 ]; then echo "loadbench: needs root (namespaces); skipped"; \
	else $(abspath $(BENCHBIN)) compare --portmapd $(abspath $(BIN)) $(BENCH_ARGS); fi

# fuzz runs every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# lint runs go vet and gofmt, then golangci-lint with .golangci.yml at the
# version pinned here, which it installs into bin/ on first use: built from
# the Go module proxy, about 5.5 CPU-minutes on a clean module cache (8.5 to
# 15 minutes of wall time on a busy 2-core machine), then about a minute to lint.
# It stays out of go.mod: a tool directive would bring golangci-lint's ~200
# modules into go.mod and go.sum, where they could raise (by minimal
# version selection) the versions of what the daemon links.
GOLANGCI_VERSION := v2.15.0
GOLANGCI := bin/golangci-lint-$(GOLANGCI_VERSION)

lint: vet $(GOLANGCI)
	$(GOLANGCI) run ./...

$(GOLANGCI):
	GOBIN=$(abspath bin) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)
	mv bin/golangci-lint $@

# install puts the binary, the systemd units (pointing at the installed
# binary), the environment file example and the man pages under
# DESTDIR/PREFIX. Enable with: systemctl enable --now portmapd.socket
UNITDIR ?= $(PREFIX)/lib/systemd/system
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/portmapd
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/doc/portmapd
	sed 's|/usr/sbin/portmapd|$(PREFIX)/sbin/portmapd|g' cmd/portmapd/portmapd.service > $(DESTDIR)$(UNITDIR)/portmapd.service
	install -m 0644 cmd/portmapd/portmapd.socket $(DESTDIR)$(UNITDIR)/portmapd.socket
	install -m 0644 cmd/portmapd/portmapd.default $(DESTDIR)$(PREFIX)/share/doc/portmapd/portmapd.default
	$(GO) run ./internal/genman --dir $(DESTDIR)$(PREFIX)/share/man/man8

# deb builds $(DIST)/portmapd_VERSION_ARCH.deb, a package that replaces
# Debian's rpcbind (Provides/Conflicts/Replaces rpcbind): install it with
# apt-get install ./dist/portmapd_*.deb. It needs Go and dpkg-dev only;
# the packaging is in cmd/portmapd/debian.
DIST ?= dist
# The package's test (internal/e2e TestDebPackageUnderSystemd): dpkg-dev
# and lintian build and check it; systemd-container and nfs-ganesha(-vfs)
# run it under systemd with an NFS server in a throw-away container.
TEST_DEBS += dpkg-dev lintian systemd-container nfs-ganesha nfs-ganesha-vfs
deb:
	GO='$(GO)' VERSION='$(VERSION)' LDFLAGS='$(LDFLAGS)' sh cmd/portmapd/debian/build.sh $(DIST)

clean:
	rm -rf bin dist
