/*
 * json.h - a small JSON reader for configuration files (json.c): the whole
 * text parsed into a tree, or one error with its byte offset.
 */
#ifndef SNAPFS_CONFIG_JSON_H
#define SNAPFS_CONFIG_JSON_H

#include <stdbool.h>
#include <stddef.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY,
                 JSON_OBJECT };

struct json {
    enum json_type type;
    bool boolean;
    double number;
    char *string;          /* JSON_STRING: NUL-terminated, no NUL inside */
    struct json **items;   /* JSON_ARRAY and JSON_OBJECT: the values */
    char **keys;           /* JSON_OBJECT: the keys, in file order */
    size_t n;
};

/* Parse TEXT: the tree, or NULL with a message (what and where) in ERR. */
struct json *json_parse(const char *text, char *err, size_t cap);
void json_free(struct json *j);
/* Member KEY of object J, or NULL. */
const struct json *json_get(const struct json *j, const char *key);

#endif
