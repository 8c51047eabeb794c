/*
 * objstore_curl.c - libcurl loaded with dlopen(3) on first use (why:
 * objstore_curl.h).
 *
 * Guarantees: curl_dl_load() loads libcurl.so.4 at most once per process
 * and either fills every entry of the table or none is used (the callers
 * check its result before any call); a missing library is one message
 * naming it, never a crash.
 */
#define _GNU_SOURCE
#include "objstore_curl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#define CURL_SONAME "libcurl.so.4"

struct curl_dl curl_dl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_rc;
static char load_why[256];

static void *find(void *lib, const char *name)
{
    void *fn = dlsym(lib, name);
    if (!fn && !load_rc) {
        load_rc = -ELIBACC;
        snprintf(load_why, sizeof(load_why), "%s: no %s", CURL_SONAME, name);
    }
    return fn;
}

static void load(void)
{
    void *lib = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        load_rc = -ELIBACC;
        snprintf(load_why, sizeof(load_why), "%s", dlerror());
        return;
    }
    /* the table's types are curl.h's: the casts go through void * */
    *(void **)&curl_dl.global_init = find(lib, "curl_global_init");
    *(void **)&curl_dl.easy_init = find(lib, "curl_easy_init");
    *(void **)&curl_dl.easy_setopt = find(lib, "curl_easy_setopt");
    *(void **)&curl_dl.easy_getinfo = find(lib, "curl_easy_getinfo");
    *(void **)&curl_dl.easy_cleanup = find(lib, "curl_easy_cleanup");
    *(void **)&curl_dl.easy_strerror = find(lib, "curl_easy_strerror");
    *(void **)&curl_dl.multi_init = find(lib, "curl_multi_init");
    *(void **)&curl_dl.multi_setopt = find(lib, "curl_multi_setopt");
    *(void **)&curl_dl.multi_add_handle = find(lib, "curl_multi_add_handle");
    *(void **)&curl_dl.multi_remove_handle =
        find(lib, "curl_multi_remove_handle");
    *(void **)&curl_dl.multi_perform = find(lib, "curl_multi_perform");
    *(void **)&curl_dl.multi_poll = find(lib, "curl_multi_poll");
    *(void **)&curl_dl.multi_info_read = find(lib, "curl_multi_info_read");
    *(void **)&curl_dl.multi_cleanup = find(lib, "curl_multi_cleanup");
    *(void **)&curl_dl.slist_append = find(lib, "curl_slist_append");
    *(void **)&curl_dl.slist_free_all = find(lib, "curl_slist_free_all");
}

int curl_dl_load(char *why, size_t cap)
{
    pthread_once(&load_once, load);
    if (load_rc && why)
        snprintf(why, cap, "%s", load_why);
    return load_rc;
}
