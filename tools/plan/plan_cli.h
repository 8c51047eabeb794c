/*
 * plan_cli.h - cli.h for the files that use jansson, and plan_json_str:
 * a JSON string of S (jansson's json_stringn: NULL when S is not UTF-8).
 * cli.h's printer is print_json_string, so no name of jansson's is
 * defined twice.
 */
#ifndef SNAPFS_PLAN_CLI_H
#define SNAPFS_PLAN_CLI_H
#include "cli.h"

#include <string.h>
#include <jansson.h>

static inline json_t *plan_json_str(const char *s)
{
    return json_stringn(s, strlen(s));
}
#endif
