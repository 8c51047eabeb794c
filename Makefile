# snapfs - one build for everything.
#
#   make            release build into build/release/
#   make deps       install the Debian packages the build and tests need
#   make test       deps, the ASan+UBSan build, unit and integration tests
#   make run        deps, build, a demo volume in ./demo.store on ./demo.mnt
#   make bench      deps, release build, the benchmark (see tests/bench)
#   make bench-scale  deps, release build, the scale benchmark: 200,000 and
#                   2,000,000 files with 2 and 20 GiB of data (~40 min,
#                   ~30 GiB of disk; tests/bench/scalebench.sh)
#   make soak       the long randomized and crash-loop runs
#   make install    the release build, helpers, units, man pages and bash
#                   completion under $(DESTDIR)$(PREFIX) (default /usr/local);
#                   make uninstall removes them
#
# Two flavours share the sources: build/release (-O2) and build/asan
# (-O1, AddressSanitizer and UndefinedBehaviorSanitizer), which the tests run.

CC      ?= cc
PKGS    := fuse3 lmdb libzstd libssl libcrypto libcurl libsystemd jansson
# loaded with dlopen(3) where they are used, not linked: with the libraries
# they bring, they would cost every command ~3 ms of loading
# (tools/vault/objstore_curl.h, fs/service.c)
PKGS_DLOPEN := libcurl libsystemd
WARN    := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Wstrict-prototypes -Wmissing-prototypes
DEFS    := -D_FILE_OFFSET_BITS=64 -DFUSE_USE_VERSION=314
# The package flags are read when a compile or a link first needs them (a
# recursive variable that caches itself), never when the Makefile is
# parsed: `make test` and `make run` install the packages first, and
# what pkg-config said before that would be wrong.
PKGCF    = $(eval PKGCF := $$(call pkgconfig,--cflags))$(PKGCF)
PKGLIBS  = $(eval PKGLIBS := $$(filter-out $$(call pkgconfig_of,--libs,$(PKGS_DLOPEN)),$$(call pkgconfig,--libs)))$(PKGLIBS)
LIBS     = $(PKGLIBS) -lpthread
pkgconfig = $(or $(shell pkg-config $(1) $(PKGS) 2>/dev/null),\
    $(error the build packages are missing (pkg-config knows no $(PKGS)): run 'make deps' as root))
pkgconfig_of = $(shell pkg-config $(1) $(2) 2>/dev/null)

CFLAGS_release  = $(WARN) $(DEFS) $(PKGCF) -O2 -g
CFLAGS_asan     = $(WARN) $(DEFS) $(PKGCF) -O1 -g -fno-omit-frame-pointer \
                  -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_release :=
LDFLAGS_asan    := -fsanitize=address,undefined

STORE_SRC := $(sort $(wildcard store/*.c))
FS_SRC    := $(sort $(wildcard fs/*.c))
TAPE_SRC  := $(sort $(wildcard tape/*.c))
TOOLS_SRC := $(sort $(wildcard tools/*.c tools/*/*.c))
# the vault's object store (s3://, file://), also linked alone into its test
OBJSTORE_SRC := $(sort $(wildcard tools/vault/objstore*.c))
# the vault engine, linked into the vault's unit tests as a library
VAULT_SRC := $(sort $(wildcard tools/vault/*.c))
UNIT_SRC  := $(sort $(wildcard tests/unit/*.c))
HDRS      := $(wildcard store/*.h fs/*.h tape/*.h tools/*.h tools/*/*.h tests/unit/*.h)

FLAVOURS := release asan

.PHONY: all deps print-deps test unit integration run bench bench-peers bench-scale soak clean check-deps \
        install uninstall
all: build/release/snapfs build/release/snapfs-damage

define flavour_rules
build/$(1)/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_$(1)) -Istore -Ifs -Itape -Itools -Itools/vault -c $$< -o $$@

build/$(1)/libsnapstore.a: $(STORE_SRC:%.c=build/$(1)/%.o)
	@rm -f $$@
	ar rcs $$@ $$^

build/$(1)/libsnaptape.a: $(TAPE_SRC:%.c=build/$(1)/%.o)
	@rm -f $$@
	ar rcs $$@ $$^

build/$(1)/libsnapvault.a: $(VAULT_SRC:%.c=build/$(1)/%.o)
	@rm -f $$@
	ar rcs $$@ $$^

build/$(1)/snapfs: $(FS_SRC:%.c=build/$(1)/%.o) \
                   $(filter-out build/$(1)/tools/damage.o,$(TOOLS_SRC:%.c=build/$(1)/%.o)) \
                   build/$(1)/libsnaptape.a build/$(1)/libsnapstore.a
	$$(CC) $$(LDFLAGS_$(1)) -o $$@ $$^ $$(LIBS)

build/$(1)/snapfs-damage: build/$(1)/tools/damage.o build/$(1)/libsnapstore.a
	$$(CC) $$(LDFLAGS_$(1)) -o $$@ $$^ $$(LIBS)

# the peer transport's test links the two files it tests
build/$(1)/unit/test_peer: build/$(1)/tests/unit/test_peer.o \
                           build/$(1)/tools/peer/peer_relay.o build/$(1)/tools/peer/peer_tls.o
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_$(1)) -o $$@ $$^ $$(LIBS)

# the NDMP engine's XDR test links the XDR file alone
build/$(1)/unit/test_ndmp_xdr: build/$(1)/tests/unit/test_ndmp_xdr.o \
                               build/$(1)/tools/ndmp/ndmp_xdr.o
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_$(1)) -o $$@ $$^ $$(LIBS)

# the node table's test links the volume (fs/volume.c) and what it calls
build/$(1)/unit/test_node_table: build/$(1)/tests/unit/test_node_table.o \
                                 build/$(1)/fs/volume.o build/$(1)/fs/wrun.o \
                                 build/$(1)/fs/metrics.o build/$(1)/libsnapstore.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_$(1)) -o $$@ $$^ $$(LIBS)

# the object store's test links the object store alone
build/$(1)/unit/test_objstore: build/$(1)/tests/unit/test_objstore.o \
                               $(OBJSTORE_SRC:%.c=build/$(1)/%.o)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_$(1)) -o $$@ $$^ $$(LIBS)

# the vault's tests link the vault engine (and the record files its
# host configuration is kept in)
build/$(1)/unit/test_vault_%: build/$(1)/tests/unit/test_vault_%.o \
                              build/$(1)/tools/kvfile.o \
                              build/$(1)/libsnapvault.a build/$(1)/libsnapstore.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_$(1)) -o $$@ $$^ $$(LIBS)

build/$(1)/unit/%: build/$(1)/tests/unit/%.o build/$(1)/libsnaptape.a \
                   build/$(1)/libsnapstore.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_$(1)) -o $$@ $$^ $$(LIBS)
endef
$(foreach f,$(FLAVOURS),$(eval $(call flavour_rules,$(f))))

UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=build/asan/unit/%)

# Every package the build, the tests and the benchmarks need: Debian's
# (what compiles snapfs; the file tools, Linux dump/restore and the real
# peers of the NAS, vault, NDMP and application tests) and npm's, into
# build/npm.  contrib/deps.sh installs what is missing.
DEB_BUILD := gcc make pkg-config libfuse3-dev fuse3 liblmdb-dev libzstd-dev \
             libssl-dev libacl1-dev libattr1-dev libcurl4-openssl-dev \
             libsystemd-dev libjansson-dev
DEB_TEST  := acl attr lmdb-utils fio python3 psmisc util-linux bc dump \
             e2fsprogs strace openssl rsync procps curl jq \
             samba samba-common-bin smbclient samba-vfs-modules \
             nfs-ganesha nfs-ganesha-vfs libnfs-utils \
             restic amanda-common postgresql postgresql-client-common \
             mariadb-server mariadb-server-core mariadb-client-core s3cmd time \
             systemd mandoc man-db bsdextrautils prometheus-node-exporter \
             fuse2fs bindfs
NPM_TEST  := s3rver@3
deps:
	@DEB_BUILD="$(DEB_BUILD)" DEB_TEST="$(DEB_TEST)" NPM_TEST="$(NPM_TEST)" \
	    bash contrib/deps.sh

print-deps:
	@echo 'DEB_BUILD="$(DEB_BUILD)"; DEB_TEST="$(DEB_TEST)"; NPM_TEST="$(NPM_TEST)"'

unit: $(UNIT_BINS)
	@fail=0; pass=0; for t in $(UNIT_BINS); do \
	    if ASAN_OPTIONS=detect_leaks=1 $$t; then pass=$$((pass+1)); else echo "FAIL: $$t"; fail=$$((fail+1)); fi; \
	done; echo "unit: $$pass passed, $$fail failed"; [ $$fail = 0 ]

integration: build/asan/snapfs build/asan/snapfs-damage build/asan/unit/test_objstore
	SNAPFS=$(CURDIR)/build/asan/snapfs SNAPFS_DAMAGE=$(CURDIR)/build/asan/snapfs-damage \
	    OBJSTORE_TEST=$(CURDIR)/build/asan/unit/test_objstore \
	    bash tests/integration/run-all.sh

test: deps
	$(MAKE) unit
	$(MAKE) integration

# Each target that installs packages builds in a second make, which reads
# the package flags only once the packages are there.
run: deps
	@$(MAKE) --no-print-directory all
	@bash contrib/demo.sh

bench: deps
	$(MAKE) all
	SNAPFS=$(CURDIR)/build/release/snapfs bash tests/bench/bench.sh
	SNAPFS=$(CURDIR)/build/release/snapfs bash tests/bench/snapbench.sh
	SNAPFS=$(CURDIR)/build/release/snapfs bash tests/bench/dumpbench.sh
	SNAPFS=$(CURDIR)/build/release/snapfs bash tests/bench/mirrorbench.sh
	SNAPFS=$(CURDIR)/build/release/snapfs bash tests/bench/vaultbench.sh
	SNAPFS=$(CURDIR)/build/release/snapfs bash tests/bench/ndmpbench.sh
	$(MAKE) --no-print-directory bench-peers

# snapfs beside the FUSE filesystems a user might run instead, each side by
# side with snapfs in one run (BENCH_REFERENCE in tests/bench/bench.sh)
bench-peers: deps
	$(MAKE) build/release/snapfs
	SNAPFS=$(CURDIR)/build/release/snapfs BENCH_REFERENCE=fuse2fs BENCH_REPS=3 \
	    BENCH_OUT=bench-fuse2fs.txt bash tests/bench/bench.sh
	SNAPFS=$(CURDIR)/build/release/snapfs BENCH_REFERENCE=bindfs BENCH_REPS=3 \
	    BENCH_OUT=bench-bindfs.txt bash tests/bench/bench.sh

bench-scale: deps
	$(MAKE) all
	SNAPFS=$(CURDIR)/build/release/snapfs bash tests/bench/scalebench.sh

soak: deps
	$(MAKE) build/release/snapfs build/asan/snapfs build/asan/snapfs-damage build/asan/unit/test_vrec
	SOAK=1 build/asan/unit/test_vrec
	SNAPFS=$(CURDIR)/build/release/snapfs SOAK=1 bash tests/integration/t13-crash.sh
	SNAPFS=$(CURDIR)/build/asan/snapfs SNAPFS_DAMAGE=$(CURDIR)/build/asan/snapfs-damage \
	    SOAK=1 TEST_TIMEOUT=600 bash tests/integration/t10-blocks.sh
	SNAPFS=$(CURDIR)/build/asan/snapfs SOAK=1 TEST_TIMEOUT=1800 bash tests/integration/t14-partial-writes.sh
	SNAPFS=$(CURDIR)/build/asan/snapfs SNAPFS_DAMAGE=$(CURDIR)/build/asan/snapfs-damage \
	    SOAK=1 bash tests/integration/t38-crash-loop.sh

# ---- install ----
# Where things go: PREFIX (default /usr/local) and DESTDIR (a staging
# root) as usual.  mount(8) finds its helpers in /sbin only, and the
# volumes' configuration is /etc/snapfs/volumes whatever the prefix.
# INSTALL_BIN is the binary installed (default the release build).
PREFIX        ?= /usr/local
BINDIR        ?= $(PREFIX)/bin
LIBEXECDIR    ?= $(PREFIX)/lib/snapfs
MANDIR        ?= $(PREFIX)/share/man
UNITDIR       ?= $(PREFIX)/lib/systemd/system
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
DOCDIR        ?= $(PREFIX)/share/doc/snapfs
SYSCONFDIR    ?= /etc
MOUNTHELPERDIR ?= /sbin
INSTALL_BIN   ?= build/release/snapfs
MAN_PAGES     := $(sort $(wildcard contrib/man/*.8))
UNITS         := $(sort $(wildcard contrib/systemd/*.service contrib/systemd/*.timer))
# the installed paths written into the scripts, units and pages
SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' \
            -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'
D = $(DESTDIR)

install: $(INSTALL_BIN)
	install -d -m 0755 $(D)$(BINDIR) $(D)$(LIBEXECDIR) $(D)$(MANDIR)/man8 \
	    $(D)$(UNITDIR) $(D)$(COMPLETIONDIR) $(D)$(DOCDIR) $(D)$(MOUNTHELPERDIR) \
	    $(D)$(SYSCONFDIR)/snapfs/volumes
	install -m 0755 $(INSTALL_BIN) $(D)$(BINDIR)/snapfs
	$(SUBST) contrib/mount.fuse.snapfs >$(D)$(MOUNTHELPERDIR)/mount.fuse.snapfs
	chmod 0755 $(D)$(MOUNTHELPERDIR)/mount.fuse.snapfs
	ln -sf mount.fuse.snapfs $(D)$(MOUNTHELPERDIR)/mount.snapfs
	$(SUBST) contrib/systemd/snapfs-unit >$(D)$(LIBEXECDIR)/snapfs-unit
	chmod 0755 $(D)$(LIBEXECDIR)/snapfs-unit
	for f in $(UNITS); do \
	    $(SUBST) $$f >$(D)$(UNITDIR)/$${f##*/} && chmod 0644 $(D)$(UNITDIR)/$${f##*/} || exit 1; \
	done
	for f in $(MAN_PAGES); do \
	    if [ -L $$f ]; then ln -sf $$(readlink $$f) $(D)$(MANDIR)/man8/$${f##*/} || exit 1; continue; fi; \
	    $(SUBST) $$f >$(D)$(MANDIR)/man8/$${f##*/} && chmod 0644 $(D)$(MANDIR)/man8/$${f##*/} || exit 1; \
	done
	install -m 0644 contrib/completion/snapfs $(D)$(COMPLETIONDIR)/snapfs
	$(SUBST) contrib/systemd/volume.conf.example >$(D)$(DOCDIR)/volume.conf.example
	chmod 0644 $(D)$(DOCDIR)/volume.conf.example

uninstall:
	rm -f $(D)$(BINDIR)/snapfs $(D)$(LIBEXECDIR)/snapfs-unit \
	    $(D)$(MOUNTHELPERDIR)/mount.fuse.snapfs $(D)$(MOUNTHELPERDIR)/mount.snapfs \
	    $(D)$(COMPLETIONDIR)/snapfs $(D)$(DOCDIR)/volume.conf.example \
	    $(addprefix $(D)$(UNITDIR)/,$(notdir $(UNITS))) \
	    $(addprefix $(D)$(MANDIR)/man8/,$(notdir $(MAN_PAGES)))
	-rmdir $(D)$(LIBEXECDIR) $(D)$(DOCDIR) 2>/dev/null

clean:
	rm -rf build
