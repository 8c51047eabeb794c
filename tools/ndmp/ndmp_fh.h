/*
 * ndmp_fh.h - file history read from a dump as it streams (ndmp_fh.c).
 */
#ifndef SNAPFS_NDMP_FH_H
#define SNAPFS_NDMP_FH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dumpfmt.h"

struct session;
struct fh_parser;

struct fh_parser *fh_parser_new(void);
/* Each file's (non-directory's) inode and header offset also into MAP
 * (ndmp_restart.c's offset map). */
struct restart_map;
void fh_set_map(struct fh_parser *f, struct restart_map *map);
/* The next LEN bytes of the dump: posts FH_ADD_DIR / FH_ADD_NODE to the
 * DMA in batches as directories and inodes go by. */
void fh_feed(struct fh_parser *f, struct session *s, const uint8_t *p,
             size_t len);
/* Post what is batched. */
void fh_flush(struct fh_parser *f, struct session *s);
void fh_parser_free(struct fh_parser *f);
/* The dump's TS_END went by (or what came was no dump). */
bool fh_ended(const struct fh_parser *f);
/* How many data blocks follow header H in a dump (shared with the DAR
 * reader, which walks the image the same way). */
uint32_t dump_data_blocks(const struct dump_header *h);

#endif
