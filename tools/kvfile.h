/*
 * kvfile.h - small records kept as "key=value" text files (the mirror's
 * and the vault's registries on this host): a table of fields says where
 * each key lives in a struct.  A file is replaced whole (a 0600 temporary
 * file written, fsynced, renamed), so a reader sees the old one or the
 * new one and a crash leaves one of them.  Also: the folders they live in.
 */
#ifndef SNAPFS_KVFILE_H
#define SNAPFS_KVFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum kv_type { KV_STR, KV_BOOL, KV_I64, KV_U64, KV_DBL };

struct kv_field {
    const char *key;
    enum kv_type type;
    size_t off, size;
};

#define KV_FIELD(st, name, type) \
    { #name, type, offsetof(struct st, name), sizeof(((struct st *)0)->name) }
#define KV_NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* Set the fields of BASE the file PATH names (unknown keys are ignored,
 * missing ones left as they are): 0 or a negative errno (-ENOENT). */
int kv_load(const char *path, const struct kv_field *fields, size_t n,
            void *base);
/* Write every field of BASE to PATH, replacing it whole (strings on one
 * line: a newline in a value becomes a space).  0 or a negative errno. */
int kv_store(const char *path, const struct kv_field *fields, size_t n,
             const void *base);

/* PATH becomes LEN bytes of TEXT, mode 0600, whole or not at all: a
 * temporary file beside it (created anew, never through a link), written,
 * fsynced, then renamed over PATH (REPLACE) or linked as PATH, which
 * answers -EEXIST if something is there (!REPLACE).  The folder itself is
 * not synced.  0 or a negative errno; the temporary file never stays. */
int kv_write_file(const char *path, const void *text, size_t len,
                  bool replace);

/* mkdir -p of PATH's parents (0755), then PATH itself with MODE (a
 * registry's folder): 0 or a negative errno. */
int kv_make_dirs(const char *path, mode_t mode);

#endif
