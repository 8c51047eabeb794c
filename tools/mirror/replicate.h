/*
 * replicate.h - what send.c and mirror.c share: stream ends over file
 * descriptors, sending one stream, and the description of a destination
 * that `receive --handshake` prints first.
 */
#ifndef SNAPFS_REPLICATE_H
#define SNAPFS_REPLICATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

/* SIGINT and SIGTERM make fd_write_all fail with -EINTR (the sender then
 * releases what it holds and says so); did one come? */
void send_catch_interrupts(void);
bool send_was_interrupted(void);

/* sfs_stream_write_fn over a file descriptor (ARG is an int *). */
int fd_write_all(void *arg, const void *buf, size_t len);

/* A buffered reader: sfs_stream_read_fn over a file descriptor. */
struct fd_reader {
    int fd;
    size_t pos, end;
    char buf[1 << 16];
};
int fd_reader_read(void *arg, void *buf, size_t len);

/* Send the stream FROM (0: full) -> TO of ST to FD, from RESUME (NULL:
 * the start).  0 or a negative errno (-EPIPE: the reader went away). */
int send_stream(struct sfs_store *st, uint64_t from, uint64_t to,
                const struct sfs_stream_pos *resume,
                const struct sfs_retention *ret, int fd,
                struct sfs_stream_stats *stats);

/*
 * What a destination holds, as the first line of `receive --handshake`:
 *   snapfs-receive 1 UUID STATE SOURCE NEWEST_SRC_EPOCH NEWEST TOKEN BS
 *                    NEWER CHANGED
 * STATE: empty (may take a full stream), follows (read-only, follows
 * SOURCE), broken (writable, was following SOURCE), other (a volume with
 * data of its own); NEWEST_SRC_EPOCH 0 and NEWEST "-" when it has no
 * received snapshot, else the newest received one; TOKEN "-" or the
 * resume token of an unfinished receive; BS its block size; NEWER the
 * names of its own snapshots newer than NEWEST (or, for `receive --adopt
 * EPOCH`, than EPOCH), comma-separated ("-": none); CHANGED 1 if its live tree changed since its newest snapshot.
 * Then, per snapshot applied: "ok NAME BYTES PRUNED" (PRUNED: snapshots
 * its retention deleted).
 */
struct destination_info {
    uint8_t uuid[16];
    char state[8];
    uint8_t source[16];
    uint64_t newest_src_epoch;
    char newest[SFS_NAME_MAX + 1];
    char token[SFS_STREAM_TOKEN_MAX];
    uint32_t block_size;
    char newer[1024];
    int changed;
};
int destination_info_read(struct sfs_store *st, MDB_txn *txn,
                          uint64_t after_epoch, struct destination_info *out);
void destination_info_print(const struct destination_info *d, FILE *out);
/* 0, or -EPROTO if LINE is not a hello line. */
int destination_info_parse(const char *line, struct destination_info *out);

void uuid_format(const uint8_t uuid[16], char out[33]);
int uuid_parse(const char *text, uint8_t uuid[16]);

#endif
