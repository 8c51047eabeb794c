#!/bin/bash
# Small random overwrites from several writers at once on a volume of 4
# KiB blocks, where every write is a whole block and the daemon applies
# the writes that arrive together in one group (fs/wgroup.c), overwrites
# inside the file without waiting for their turn: byte for byte against a
# model, with a file growing meanwhile, across snapshots, a remount and a
# SIGKILL of the daemon after fsync.
. "$(dirname "$0")/lib.sh"
vol_create --size 1G --block-size 4K || test_bail "cannot create a volume"

MiB=$((1024 * 1024))

# cw.py FILE MODEL WRITERS OPS SEED [--grow PAGES] [--after-sync LOG]:
# WRITERS processes overwrite 4 KiB pages of FILE at once, writer k the
# pages p with p % WRITERS == k (so the result is known), each reading its
# own pages back in between and comparing them with what it wrote; with
# --grow one more process appends PAGES pages meanwhile.  Everyone
# fsyncs at the end and the pages are written into MODEL too.
# --after-sync LOG: after that, each writer overwrites 50 more of its
# pages without syncing, lists them in LOG.k with their SHA-256, and waits
# until the parent process is killed.
cat >"$TEST_TMP/cw.py" <<'PY'
import hashlib, os, random, sys, time
path, model_path = sys.argv[1], sys.argv[2]
writers, ops, seed = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
grow = int(sys.argv[sys.argv.index("--grow") + 1]) if "--grow" in sys.argv else 0
after = sys.argv[sys.argv.index("--after-sync") + 1] if "--after-sync" in sys.argv else None
pages = os.path.getsize(model_path) // 4096

def overwrite(k):
    rnd = random.Random(seed * 100 + k)
    fd, md = os.open(path, os.O_RDWR), os.open(model_path, os.O_RDWR)
    mine = list(range(k, pages, writers))
    written = {}
    for i in range(ops):
        p = rnd.choice(mine)
        if written and rnd.random() < 0.1:
            q = rnd.choice(list(written))
            if os.pread(fd, 4096, q * 4096) != written[q]:
                sys.exit("writer %d: page %d reads back differently" % (k, q))
        data = rnd.randbytes(4096)
        os.pwrite(fd, data, p * 4096)
        written[p] = data
    os.fsync(fd)
    for p, data in written.items():
        os.pwrite(md, data, p * 4096)
    os.fsync(md)
    if after:
        log = "%s.%d" % (after, k)
        with open(log + ".new", "w") as f:
            for p in rnd.sample(mine, 50):
                data = rnd.randbytes(4096)
                os.pwrite(fd, data, p * 4096)
                f.write("%d %s\n" % (p, hashlib.sha256(data).hexdigest()))
        os.rename(log + ".new", log)
        while os.getppid() == parent:  # until the test kills the parent
            time.sleep(0.05)

def append():
    rnd = random.Random(seed * 100 + writers)
    fd, md = os.open(path, os.O_RDWR), os.open(model_path, os.O_RDWR)
    for i in range(grow):
        data = rnd.randbytes(4096)
        os.pwrite(fd, data, (pages + i) * 4096)
        os.pwrite(md, data, (pages + i) * 4096)
    os.fsync(fd)
    os.fsync(md)

parent, kids = os.getpid(), []
for k in range(writers + (1 if grow else 0)):
    pid = os.fork()
    if pid == 0:
        try:
            overwrite(k) if k < writers else append()
        except SystemExit as e:
            print(e, file=sys.stderr)
            os._exit(1)
        os._exit(0)
    kids.append(pid)
bad = sum(1 for pid in kids if os.waitpid(pid, 0)[1] != 0)
sys.exit("%d writers failed" % bad if bad else 0)
PY

# after.py FILE MODEL LOG...: each page of FILE is the model's (synced) or,
# for a page a LOG lists, the one written after the sync
cat >"$TEST_TMP/after.py" <<'PY'
import hashlib, sys
path, model_path, logs = sys.argv[1], sys.argv[2], sys.argv[3:]
got, model = open(path, "rb").read(), open(model_path, "rb").read()
late = {}
for log in logs:
    late.update({int(p): h for p, h in (line.split() for line in open(log))})
if len(got) != len(model):
    sys.exit("size %d, the model's %d" % (len(got), len(model)))
for p in range(len(model) // 4096):
    a = got[p * 4096:(p + 1) * 4096]
    if a != model[p * 4096:(p + 1) * 4096] and \
            hashlib.sha256(a).hexdigest() != late.get(p):
        sys.exit("page %d is neither the synced content nor a later write" % p)
print("every page synced or later")
PY

start() {
	rand_file "$REF/$1.model" "$2" && cp "$REF/$1.model" "$1"
}

test_expect_success 'four writers overwriting 4 KiB pages of one file at once: the file is the model' '
	start f $((16 * MiB)) &&
	python3 "$TEST_TMP/cw.py" f "$REF/f.model" 4 3000 1 &&
	cmp f "$REF/f.model"
'

test_expect_success 'overwrites while another writer appends to the file: both land, in full' '
	python3 "$TEST_TMP/cw.py" f "$REF/f.model" 3 2000 2 --grow 1024 &&
	assert_eq $((20 * MiB)) "$(stat -c %s f)" &&
	cmp f "$REF/f.model"
'

test_expect_success SNAPFS 'a snapshot between two rounds of concurrent overwrites holds exactly the first' '
	cp "$REF/f.model" "$REF/f.a" &&
	"$SNAPFS" snapshot create "$MNT" a &&
	python3 "$TEST_TMP/cw.py" f "$REF/f.model" 4 2000 3 &&
	cmp .snapshot/a/f "$REF/f.a" &&
	cmp f "$REF/f.model" &&
	! cmp -s "$REF/f.a" "$REF/f.model"
'

test_expect_success SNAPFS 'after a remount the file and the snapshot still match' '
	vol_remount &&
	cmp f "$REF/f.model" &&
	cmp .snapshot/a/f "$REF/f.a"
'

test_expect_success SNAPFS 'a SIGKILL of the daemon after the writers fsynced: every synced page is there' '
	start k $((8 * MiB)) &&
	{ python3 "$TEST_TMP/cw.py" k "$REF/k.model" 4 2000 4 --after-sync "$REF/k.late" & } &&
	writer=$! &&
	while ! [ -e "$REF/k.late.0" ] || ! [ -e "$REF/k.late.1" ] ||
	      ! [ -e "$REF/k.late.2" ] || ! [ -e "$REF/k.late.3" ]; do
		pid_running "$writer" || exit 1
		sleep 0.05
	done &&
	crash_remount "$writer" &&
	python3 "$TEST_TMP/after.py" "$MNT/k" "$REF/k.model" "$REF"/k.late.* &&
	cmp "$MNT/f" "$REF/f.model" &&
	cmp "$MNT/.snapshot/a/f" "$REF/f.a"
'

test_done
