/*
 * objstore_xml.c - the few XML elements S3 answers with (<Code>,
 * <Message>, <UploadId>, a listing's <Contents><Key><Size>...), found by
 * name in a bounded buffer.  S3's answers are flat documents of elements
 * without attributes (the root's xmlns aside), which is all this reads.
 *
 * Guarantees: never reads outside [P, END) (the buffer need not be
 * NUL-terminated), never writes more than OUTSZ bytes; decodes the five
 * named entities and numeric character references (as UTF-8); anything
 * malformed reads as absent, never as a wrong value.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "objstore_s3.h"

/* The next start tag <TAG> (or <TAG ...>, <TAG/>) in [P, END): where it
 * begins, *AFTER just past its '>', *EMPTY if it closes itself. */
static const char *find_start(const char *p, const char *end, const char *tag,
                              const char **after, bool *empty)
{
    size_t tl = strlen(tag);
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || (size_t)(end - lt) < tl + 2)
            return NULL;
        const char *name = lt + 1, *c = name + tl;
        if (!memcmp(name, tag, tl) && (*c == '>' || *c == ' ' || *c == '/')) {
            const char *gt = memchr(c, '>', (size_t)(end - c));
            if (!gt)
                return NULL;
            *empty = gt[-1] == '/';
            *after = gt + 1;
            return lt;
        }
        p = lt + 1;
    }
    return NULL;
}

bool xml_next(const char **p, const char *end, const char *tag, const char **in,
              const char **in_end)
{
    const char *after;
    bool empty;
    if (!find_start(*p, end, tag, &after, &empty))
        return false;
    if (empty) {
        *in = *in_end = after;
        *p = after;
        return true;
    }
    size_t tl = strlen(tag);
    for (const char *q = after; q < end;) {
        const char *lt = memmem(q, (size_t)(end - q), "</", 2);
        if (!lt || (size_t)(end - lt) < tl + 3)
            return false;
        if (!memcmp(lt + 2, tag, tl) && lt[2 + tl] == '>') {
            *in = after;
            *in_end = lt;
            *p = lt + tl + 3;
            return true;
        }
        q = lt + 2;
    }
    return false;
}

/* Encode code point CP as UTF-8 at OUT; its length, 0 if invalid. */
static size_t utf8_put(unsigned long cp, char *out)
{
    if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decode the entity at [P, END) (P at '&') into OUT (room for 4 bytes):
 * bytes written, 0 if malformed; *USED the entity's length. */
static size_t decode_entity(const char *p, const char *end, char *out, size_t *used)
{
    static const struct { const char *name; char c; } named[] = {
        { "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' }, { "&quot;", '"' }, { "&apos;", '\'' },
    };
    const char *semi = memchr(p, ';', (size_t)(end - p) < 12 ? (size_t)(end - p) : 12);
    if (!semi)
        return 0;
    *used = (size_t)(semi - p) + 1;
    for (size_t i = 0; i < sizeof(named) / sizeof(*named); i++)
        if (*used == strlen(named[i].name) && !memcmp(p, named[i].name, *used)) {
            out[0] = named[i].c;
            return 1;
        }
    if (*used < 4 || p[1] != '#')
        return 0;
    bool hex = p[2] == 'x' || p[2] == 'X';
    const char *digits = p + 2 + hex;
    char num[12];
    size_t nd = (size_t)(semi - digits);
    if (nd == 0 || nd >= sizeof(num))
        return 0;
    memcpy(num, digits, nd);
    num[nd] = 0;
    char *stop;
    unsigned long cp = strtoul(num, &stop, hex ? 16 : 10);
    return *stop ? 0 : utf8_put(cp, out);
}

bool xml_text(const char *p, const char *end, const char *tag, char *out,
              size_t outsz)
{
    const char *in, *in_end;
    if (!outsz || !xml_next(&p, end, tag, &in, &in_end))
        return false;
    size_t n = 0;
    while (in < in_end) {
        char c[4];
        size_t len = 1, used = 1;
        c[0] = *in;
        if (*in == '&' && !(len = decode_entity(in, in_end, c, &used)))
            return false;
        if (*in == '<' || n + len >= outsz)
            return false; /* markup inside, or too long */
        memcpy(out + n, c, len);
        n += len;
        in += used;
    }
    out[n] = 0;
    return true;
}
