/*
 * json.c - a small JSON reader (RFC 8259) for `snapfs config import`:
 * objects, arrays, strings (with \u escapes, surrogate pairs, encoded as
 * UTF-8), numbers, true, false, null.
 *
 * Guarantees: the whole text must be one value (trailing garbage, a
 * duplicate key, a NUL in a string, nesting deeper than JSON_DEPTH_MAX
 * are errors); an error names what was expected and the byte offset; no
 * partial tree escapes (json_parse frees what it built).
 */
#define _GNU_SOURCE
#include "config/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_DEPTH_MAX 64

struct reader {
    const char *text, *p;
    char *err;
    size_t cap;
    bool failed;
};

static void fail(struct reader *r, const char *what)
{
    if (!r->failed)
        snprintf(r->err, r->cap, "%s at byte %zu", what,
                 (size_t)(r->p - r->text));
    r->failed = true;
}

static void skip_space(struct reader *r)
{
    while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
        r->p++;
}

static struct json *node(enum json_type t)
{
    struct json *j = calloc(1, sizeof(*j));
    if (j)
        j->type = t;
    return j;
}

static struct json *value(struct reader *r, int depth);

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static void put_utf8(char **o, unsigned cp)
{
    unsigned char *u = (unsigned char *)*o;
    if (cp < 0x80) {
        *u++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *u++ = (unsigned char)(0xc0 | cp >> 6);
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *u++ = (unsigned char)(0xe0 | cp >> 12);
        *u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else {
        *u++ = (unsigned char)(0xf0 | cp >> 18);
        *u++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        *u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    }
    *o = (char *)u;
}

/* A \uXXXX escape (and its low surrogate) at r->p (after the 'u'). */
static bool unicode_escape(struct reader *r, char **o)
{
    int cp = hex4(r->p);
    if (cp < 0)
        return false;
    r->p += 4;
    if (cp >= 0xd800 && cp < 0xdc00) {
        int lo = r->p[0] == '\\' && r->p[1] == 'u' ? hex4(r->p + 2) : -1;
        if (lo < 0xdc00 || lo >= 0xe000)
            return false;
        r->p += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    } else if (cp >= 0xdc00 && cp < 0xe000) {
        return false;
    }
    if (cp == 0)
        return false; /* no NUL inside a C string */
    put_utf8(o, (unsigned)cp);
    return true;
}

static char *string(struct reader *r)
{
    if (*r->p != '"') {
        fail(r, "a string expected");
        return NULL;
    }
    r->p++;
    char *out = malloc(strlen(r->p) + 1), *o = out; /* escapes only shrink */
    if (!out) {
        fail(r, "out of memory");
        return NULL;
    }
    static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
    while (*r->p != '"') {
        unsigned char c = (unsigned char)*r->p;
        if (c < 0x20) {
            fail(r, c ? "a control character in a string"
                      : "an unended string");
            free(out);
            return NULL;
        }
        r->p++;
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        const char *e = *r->p ? strchr(esc_in, *r->p) : NULL;
        if (e) {
            *o++ = esc_out[e - esc_in];
            r->p++;
        } else if (*r->p == 'u') {
            r->p++;
            if (!unicode_escape(r, &o)) {
                fail(r, "a bad \\u escape");
                free(out);
                return NULL;
            }
        } else {
            fail(r, "a bad escape");
            free(out);
            return NULL;
        }
    }
    r->p++;
    *o = 0;
    return out;
}

static struct json *number(struct reader *r)
{
    const char *s = r->p;
    if (*s == '-')
        s++;
    if (!(*s >= '0' && *s <= '9')) {
        fail(r, "a value expected");
        return NULL;
    }
    char *end;
    double v = strtod(r->p, &end);
    struct json *j = node(JSON_NUMBER);
    if (!j) {
        fail(r, "out of memory");
        return NULL;
    }
    j->number = v;
    r->p = end;
    return j;
}

static bool push(struct json *j, char *key, struct json *v)
{
    struct json **items = realloc(j->items, (j->n + 1) * sizeof(*items));
    if (!items)
        return false;
    j->items = items;
    if (j->type == JSON_OBJECT) {
        char **keys = realloc(j->keys, (j->n + 1) * sizeof(*keys));
        if (!keys)
            return false;
        j->keys = keys;
        keys[j->n] = key;
    }
    items[j->n++] = v;
    return true;
}

static struct json *container(struct reader *r, int depth, bool object)
{
    char close = object ? '}' : ']';
    struct json *j = node(object ? JSON_OBJECT : JSON_ARRAY);
    if (!j) {
        fail(r, "out of memory");
        return NULL;
    }
    r->p++;
    skip_space(r);
    if (*r->p == close) {
        r->p++;
        return j;
    }
    for (;;) {
        char *key = NULL;
        skip_space(r);
        if (object) {
            key = string(r);
            if (key && json_get(j, key)) {
                fail(r, "a key given twice");
                free(key);
                key = NULL;
            }
            skip_space(r);
            if (key && *r->p++ != ':')
                fail(r, "':' expected");
        }
        struct json *v = r->failed ? NULL : value(r, depth + 1);
        if (!v || !push(j, key, v)) {
            fail(r, "out of memory");
            free(key);
            json_free(v);
            json_free(j);
            return NULL;
        }
        skip_space(r);
        if (*r->p == ',') {
            r->p++;
            continue;
        }
        if (*r->p == close) {
            r->p++;
            return j;
        }
        fail(r, object ? "',' or '}' expected" : "',' or ']' expected");
        json_free(j);
        return NULL;
    }
}

static struct json *word(struct reader *r, const char *w, enum json_type t,
                         bool b)
{
    size_t n = strlen(w);
    if (strncmp(r->p, w, n)) {
        fail(r, "a value expected");
        return NULL;
    }
    r->p += n;
    struct json *j = node(t);
    if (!j)
        fail(r, "out of memory");
    else
        j->boolean = b;
    return j;
}

static struct json *value(struct reader *r, int depth)
{
    if (depth > JSON_DEPTH_MAX) {
        fail(r, "nested too deeply");
        return NULL;
    }
    skip_space(r);
    switch (*r->p) {
    case '{': return container(r, depth, true);
    case '[': return container(r, depth, false);
    case 't': return word(r, "true", JSON_BOOL, true);
    case 'f': return word(r, "false", JSON_BOOL, false);
    case 'n': return word(r, "null", JSON_NULL, false);
    case '"': {
        char *s = string(r);
        struct json *j = s ? node(JSON_STRING) : NULL;
        if (!j) {
            free(s);
            fail(r, "out of memory");
            return NULL;
        }
        j->string = s;
        return j;
    }
    default: return number(r);
    }
}

struct json *json_parse(const char *text, char *err, size_t cap)
{
    struct reader r = { text, text, err, cap, false };
    struct json *j = value(&r, 0);
    skip_space(&r);
    if (j && *r.p) {
        fail(&r, "text after the end of the value");
        json_free(j);
        j = NULL;
    }
    return r.failed ? (json_free(j), NULL) : j;
}

void json_free(struct json *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n; i++) {
        json_free(j->items[i]);
        if (j->keys)
            free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    free(j->string);
    free(j);
}

const struct json *json_get(const struct json *j, const char *key)
{
    if (!j || j->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < j->n; i++)
        if (!strcmp(j->keys[i], key))
            return j->items[i];
    return NULL;
}
