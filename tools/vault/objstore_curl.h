/*
 * objstore_curl.h - libcurl, loaded when the first s3:// target is opened.
 *
 * libcurl brings some 25 shared libraries with it (TLS, HTTP/2, IDN,
 * Kerberos, LDAP, ...); linked into the snapfs binary they cost every
 * command about 3 ms before main() runs, most of the time a `snapshot
 * create` takes.  So only the files that speak S3 use libcurl, through
 * this table, filled by curl_dl_load() with dlopen(3) of its stable
 * soname.  curl/curl.h still gives the types and constants; the names
 * below turn the calls of those files into calls through the table
 * (curl.h's type-checking macros of the same names are set aside).
 */
#ifndef SNAPFS_OBJSTORE_CURL_H
#define SNAPFS_OBJSTORE_CURL_H

#include <curl/curl.h>

struct curl_dl {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *curl);
    const char *(*easy_strerror)(CURLcode code);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *multi, CURLMoption option, ...);
    CURLMcode (*multi_add_handle)(CURLM *multi, CURL *easy);
    CURLMcode (*multi_remove_handle)(CURLM *multi, CURL *easy);
    CURLMcode (*multi_perform)(CURLM *multi, int *running);
    CURLMcode (*multi_poll)(CURLM *multi, struct curl_waitfd *extra,
                            unsigned int n, int timeout_ms, int *numfds);
    CURLMsg *(*multi_info_read)(CURLM *multi, int *left);
    CURLMcode (*multi_cleanup)(CURLM *multi);
    struct curl_slist *(*slist_append)(struct curl_slist *list,
                                       const char *s);
    void (*slist_free_all)(struct curl_slist *list);
};

extern struct curl_dl curl_dl;

/*
 * curl_dl_load - load libcurl and fill curl_dl, once per process (later
 * calls return the first one's result).  Returns 0, or -ELIBACC when
 * libcurl or one of its functions cannot be found; WHY (CAP bytes) then
 * says which, in dlerror(3)'s words.
 */
int curl_dl_load(char *why, size_t cap);

#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init curl_dl.global_init
#define curl_easy_init curl_dl.easy_init
#define curl_easy_setopt curl_dl.easy_setopt
#define curl_easy_getinfo curl_dl.easy_getinfo
#define curl_easy_cleanup curl_dl.easy_cleanup
#define curl_easy_strerror curl_dl.easy_strerror
#define curl_multi_init curl_dl.multi_init
#define curl_multi_setopt curl_dl.multi_setopt
#define curl_multi_add_handle curl_dl.multi_add_handle
#define curl_multi_remove_handle curl_dl.multi_remove_handle
#define curl_multi_perform curl_dl.multi_perform
#define curl_multi_poll curl_dl.multi_poll
#define curl_multi_info_read curl_dl.multi_info_read
#define curl_multi_cleanup curl_dl.multi_cleanup
#define curl_slist_append curl_dl.slist_append
#define curl_slist_free_all curl_dl.slist_free_all

#endif
