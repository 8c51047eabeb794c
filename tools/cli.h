/*
 * cli.h - helpers shared by the snapfs subcommands.
 */
#ifndef SNAPFS_CLI_H
#define SNAPFS_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void die_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void die(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
int parse_size(const char *s, uint64_t *out);
char *mounted_store(const char *path);
char *resolve_volume(const char *arg, bool *mounted);
const char *open_error(int rc);
/* "1.50 MiB": BYTES in binary units, into OUT. */
void format_bytes(uint64_t bytes, char *out, size_t cap);

int cmd_info(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);

#endif
