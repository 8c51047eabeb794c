/*
 * smallfiles - small-file metadata/data benchmark for the snapfs bench harness.
 *
 * In DIR, creates NDIRS directories and NFILES files of SIZE bytes spread
 * round-robin across them, then runs five timed phases over all files:
 *
 *   create  open(O_CREAT|O_EXCL) + write SIZE bytes + close, then one
 *           syncfs() so that dirty data held in a writeback cache is
 *           flushed to the filesystem inside the timed region
 *   stat    fstatat() (size is checked)
 *   read    open + read to EOF + close (content is verified)
 *   rename  renameat() of each file to a new name in its directory
 *   unlink  unlinkat() of the new names
 *
 * Each phase prints one machine-readable line "PHASE OPS_PER_SEC" on stdout,
 * plus "files N", "dirs N", "size N" and "chunk N".  Directory creation and
 * removal are not timed.
 *
 * With -d, the page/dentry/inode caches are dropped (sync +
 * /proc/sys/vm/drop_caches = 3, needs root) before each of the stat, read,
 * rename and unlink phases, untimed, so those phases reach the filesystem instead
 * of the kernel's caches.
 *
 * With -c CHUNK (and -d), each phase is also cut into chunks of CHUNK files
 * and the caches are dropped between chunks, with the clock stopped; in the
 * create phase each chunk ends with its own (timed) syncfs().  This bounds
 * how many inodes the kernel keeps referenced at once: a FUSE daemon that
 * holds one open fd per remembered inode (libfuse's passthrough_ll does)
 * would otherwise need more than NFILES descriptors.  Since the dropped
 * entries would have been cold at that point anyway (the files of later
 * chunks were never looked up in the phase), chunking changes what is
 * timed very little.
 *
 * Usage: smallfiles [-n NFILES] [-D NDIRS] [-s SIZE] [-d] [-c CHUNK] DIR
 *
 * Exit status: 0 on success, 1 on any error (message on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static long nfiles = 20000;
static long ndirs = 100;
static size_t fsize = 4096;
static long chunk;
static int drop_caches;

static int *dirfds;
static unsigned char *wbuf;
static unsigned char *rbuf;

static void die(const char *what, const char *name)
{
	if (name)
		fprintf(stderr, "smallfiles: %s %s: %s\n", what, name,
			strerror(errno));
	else
		fprintf(stderr, "smallfiles: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		die("clock_gettime", NULL);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Deterministic, incompressible content for file i (xorshift64*). */
static void fill(unsigned char *buf, size_t len, long i)
{
	uint64_t x = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)i * 0xD1B54A32D192ED03ULL);
	size_t off = 0;

	if (x == 0)
		x = 1;
	while (off < len) {
		uint64_t v;
		size_t n;

		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		v = x * 0x2545F4914F6CDD1DULL;
		n = len - off < sizeof(v) ? len - off : sizeof(v);
		memcpy(buf + off, &v, n);
		off += n;
	}
}

static void fname(char *buf, size_t len, long i)
{
	snprintf(buf, len, "f%07ld", i);
}

/* The name of file I after the rename phase. */
static void rname(char *buf, size_t len, long i)
{
	snprintf(buf, len, "r%07ld", i);
}

static void do_drop_caches(void)
{
	int fd;

	if (!drop_caches)
		return;
	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		die("open", "/proc/sys/vm/drop_caches");
	if (write(fd, "3\n", 2) != 2)
		die("write", "/proc/sys/vm/drop_caches");
	close(fd);
}

static void phase_create(long from, long to)
{
	char name[32];
	long i;

	for (i = from; i < to; i++) {
		int dfd = dirfds[i % ndirs];
		size_t off = 0;
		int fd;

		fname(name, sizeof(name), i);
		fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			    0644);
		if (fd < 0)
			die("create", name);
		fill(wbuf, fsize, i);
		while (off < fsize) {
			ssize_t n = write(fd, wbuf + off, fsize - off);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				die("write", name);
			}
			if (n == 0) {
				errno = EIO;
				die("write (no progress)", name);
			}
			off += (size_t)n;
		}
		if (close(fd) != 0)
			die("close", name);
	}
	/* flush what a writeback cache may still hold, inside the clock */
	if (syncfs(dirfds[0]) != 0)
		die("syncfs", NULL);
}

static void phase_stat(long from, long to)
{
	char name[32];
	struct stat st;
	long i;

	for (i = from; i < to; i++) {
		fname(name, sizeof(name), i);
		if (fstatat(dirfds[i % ndirs], name, &st, AT_SYMLINK_NOFOLLOW))
			die("stat", name);
		if (!S_ISREG(st.st_mode) || (size_t)st.st_size != fsize) {
			fprintf(stderr,
				"smallfiles: stat %s: unexpected mode/size "
				"(%o, %jd)\n", name, (unsigned)st.st_mode,
				(intmax_t)st.st_size);
			exit(1);
		}
	}
}

static void phase_read(long from, long to)
{
	char name[32];
	long i;

	for (i = from; i < to; i++) {
		size_t got = 0;
		int fd;

		fname(name, sizeof(name), i);
		fd = openat(dirfds[i % ndirs], name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open", name);
		for (;;) {
			/* read one byte past the end to see EOF */
			ssize_t n = read(fd, rbuf + got, fsize + 1 - got);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				die("read", name);
			}
			if (n == 0)
				break;
			got += (size_t)n;
			if (got > fsize)
				break;
		}
		if (close(fd) != 0)
			die("close", name);
		fill(wbuf, fsize, i);
		if (got != fsize || memcmp(rbuf, wbuf, fsize) != 0) {
			fprintf(stderr,
				"smallfiles: read %s: content mismatch "
				"(%zu bytes read, %zu expected)\n",
				name, got, fsize);
			exit(1);
		}
	}
}

static void phase_rename(long from, long to)
{
	char name[32], newname[32];
	long i;

	for (i = from; i < to; i++) {
		fname(name, sizeof(name), i);
		rname(newname, sizeof(newname), i);
		if (renameat(dirfds[i % ndirs], name, dirfds[i % ndirs], newname) != 0)
			die("rename", name);
	}
}

static void phase_unlink(long from, long to)
{
	char name[32];
	long i;

	for (i = from; i < to; i++) {
		rname(name, sizeof(name), i);
		if (unlinkat(dirfds[i % ndirs], name, 0) != 0)
			die("unlink", name);
	}
}

/*
 * Runs fn over all files, chunk by chunk, dropping caches (untimed) between
 * chunks, and prints "NAME OPS_PER_SEC".
 */
static void run_phase(const char *phase, void (*fn)(long, long))
{
	double total = 0;
	long from;

	for (from = 0; from < nfiles; from += chunk) {
		long to = nfiles - from > chunk ? from + chunk : nfiles;
		double t0;

		if (from > 0)
			do_drop_caches();
		t0 = now();
		fn(from, to);
		total += now() - t0;
	}
	if (total <= 0)
		total = 1e-9;
	printf("%s %.1f\n", phase, (double)nfiles / total);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: smallfiles [-n NFILES] [-D NDIRS] [-s SIZE] [-d] "
		"[-c CHUNK] DIR\n"
		"  -n NFILES  number of files (default 20000)\n"
		"  -D NDIRS   number of directories (default 100)\n"
		"  -s SIZE    bytes per file (default 4096)\n"
		"  -d         drop kernel caches before stat/read/rename/unlink "
		"(root)\n"
		"  -c CHUNK   with -d, also drop caches (untimed) every CHUNK "
		"files\n");
	exit(2);
}

static long parse_long(const char *s, long min)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	char dname[32];
	const char *top;
	int topfd;
	long d;
	int c;

	while ((c = getopt(argc, argv, "n:D:s:dc:h")) != -1) {
		switch (c) {
		case 'n':
			nfiles = parse_long(optarg, 1);
			break;
		case 'D':
			ndirs = parse_long(optarg, 1);
			break;
		case 's':
			fsize = (size_t)parse_long(optarg, 1);
			break;
		case 'd':
			drop_caches = 1;
			break;
		case 'c':
			chunk = parse_long(optarg, 1);
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	top = argv[optind];
	if (chunk == 0 || chunk > nfiles || !drop_caches)
		chunk = nfiles;

	topfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (topfd < 0)
		die("open", top);
	dirfds = calloc((size_t)ndirs, sizeof(*dirfds));
	wbuf = malloc(fsize);
	rbuf = malloc(fsize + 1);
	if (!dirfds || !wbuf || !rbuf)
		die("malloc", NULL);

	for (d = 0; d < ndirs; d++) {
		snprintf(dname, sizeof(dname), "d%04ld", d);
		if (mkdirat(topfd, dname, 0755) != 0)
			die("mkdir", dname);
		dirfds[d] = openat(topfd, dname,
				   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dirfds[d] < 0)
			die("open", dname);
	}

	printf("files %ld\ndirs %ld\nsize %zu\nchunk %ld\n", nfiles, ndirs,
	       fsize, chunk);
	fflush(stdout);

	run_phase("create", phase_create);
	do_drop_caches();
	run_phase("stat", phase_stat);
	do_drop_caches();
	run_phase("read", phase_read);
	do_drop_caches();
	run_phase("rename", phase_rename);
	do_drop_caches();
	run_phase("unlink", phase_unlink);

	for (d = 0; d < ndirs; d++) {
		close(dirfds[d]);
		snprintf(dname, sizeof(dname), "d%04ld", d);
		if (unlinkat(topfd, dname, AT_REMOVEDIR) != 0)
			die("rmdir", dname);
	}
	close(topfd);
	free(dirfds);
	free(wbuf);
	free(rbuf);
	return 0;
}
