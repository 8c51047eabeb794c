/*
 * test_json.c - the JSON reader of `snapfs config import`
 * (tools/config/json.c): values of every type, escapes and surrogate
 * pairs as UTF-8, keys in order; refused with an error naming the byte:
 * text after the value, a key twice, a NUL (\u0000), a lone surrogate, an
 * unended string, a control character, nesting past 64, a bad escape,
 * a missing comma or colon, an empty text.
 */
#define _GNU_SOURCE
#include <string.h>

#include "check.h"
#include "config/json.h"

static void test_values(void)
{
    char err[200];
    struct json *j = json_parse(" {\"a\": [1, -2.5e1, true, false, null],"
                                " \"b\": \"x\\u00e9\\ud83d\\ude00\\n\\\"\","
                                " \"c\": {}} ", err, sizeof(err));
    CHECK(j && j->type == JSON_OBJECT && j->n == 3, "an object: %s",
          j ? "" : err);
    if (!j)
        return;
    const struct json *a = json_get(j, "a"), *b = json_get(j, "b");
    CHECK(a && a->type == JSON_ARRAY && a->n == 5, "the array");
    CHECK(a->items[0]->number == 1 && a->items[1]->number == -25,
          "numbers");
    CHECK(a->items[2]->type == JSON_BOOL && a->items[2]->boolean &&
          a->items[3]->type == JSON_BOOL && !a->items[3]->boolean &&
          a->items[4]->type == JSON_NULL, "words");
    CHECK(b && !strcmp(b->string, "x\xc3\xa9\xf0\x9f\x98\x80\n\""),
          "escapes as UTF-8");
    CHECK(!strcmp(j->keys[0], "a") && !strcmp(j->keys[2], "c") &&
          json_get(j, "c")->n == 0 && !json_get(j, "d"), "keys in order");
    json_free(j);
}

static void test_refused(void)
{
    char deep[200] = "";
    for (int i = 0; i < 66; i++)
        strcat(deep, "[");
    const char *bad[] = { "", "{} x", "{\"a\":1,\"a\":2}", "\"\\u0000\"",
                          "\"\\ud800\"", "\"abc", "\"a\tb\"", deep,
                          "\"\\q\"", "[1 2]", "{\"a\" 1}", "{a:1}", "tru",
                          "-", "[1,]" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char err[200] = "";
        struct json *j = json_parse(bad[i], err, sizeof(err));
        CHECK(!j && strstr(err, " at byte "), "'%.20s' refused: %s", bad[i],
              err);
        json_free(j);
    }
}

int main(void)
{
    test_values();
    test_refused();
    return test_done("test_json");
}
