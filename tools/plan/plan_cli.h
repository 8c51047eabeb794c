/*
 * plan_cli.h - cli.h for the files that use jansson: cli.h's json_string
 * (which prints a JSON string) has the name of jansson's constructor, so
 * here it is declared as cli_json_string, which these files never call.
 * The name clashes at link time too: the executable's json_string is the
 * one every call reaches, jansson's own calls included.  So these files
 * make JSON strings with plan_json_str (jansson's json_stringn), never
 * with json_string.
 */
#ifndef SNAPFS_PLAN_CLI_H
#define SNAPFS_PLAN_CLI_H
#define json_string cli_json_string
#include "cli.h"
#undef json_string

#include <string.h>
#include <jansson.h>

static inline json_t *plan_json_str(const char *s)
{
    return json_stringn(s, strlen(s));
}
#endif
