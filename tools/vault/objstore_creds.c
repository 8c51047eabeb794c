/*
 * objstore_creds.c - where an s3:// store's credentials and region come
 * from, as the AWS CLI finds them: the environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; AWS_REGION,
 * AWS_DEFAULT_REGION; AWS_PROFILE) and the INI files
 * AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials, sections
 * [NAME]) and AWS_CONFIG_FILE (default ~/.aws/config, sections [default]
 * and [profile NAME]).
 *
 * Guarantees: never on a command line, never printed: the messages name
 * the variables, files and profiles looked at, never a value read from
 * them (the region aside, which is no secret).  Values too long for their
 * buffers are refused, never cut.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "objstore_s3.h"

#define DEFAULT_REGION "us-east-1"

/* The path of a file: the variable ENV if set, else ~/.aws/NAME. */
static void aws_file(const char *env, const char *name, char *path, size_t size)
{
    const char *set = getenv(env), *home = getenv("HOME");
    if (set && *set)
        snprintf(path, size, "%s", set);
    else
        snprintf(path, size, "%s/.aws/%s", home ? home : "", name);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* Is the section header LINE ("[...]", trimmed) that of PROFILE?  The
 * config file names profiles "[profile NAME]" (and "[default]"). */
static bool section_is(const char *line, const char *profile, bool config)
{
    size_t n = strlen(line);
    if (n < 2 || line[0] != '[' || line[n - 1] != ']')
        return false;
    char name[256];
    if (n - 2 >= sizeof(name))
        return false;
    memcpy(name, line + 1, n - 2);
    name[n - 2] = 0;
    char *s = trim(name);
    if (config && strcmp(profile, "default")) {
        if (strncmp(s, "profile", 7) || !isspace((unsigned char)s[7]))
            return false;
        s = trim(s + 7);
    }
    return !strcmp(s, profile);
}

/*
 * Read KEY of section PROFILE of the INI file PATH into OUT.  1 found,
 * 0 not there (or no such file), -EINVAL longer than OUTSZ - 1.
 */
static int ini_value(const char *path, const char *profile, bool config,
                     const char *key, char *out, size_t outsz)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char line[16384];
    bool in_section = false;
    int found = 0;
    while (!found && fgets(line, sizeof(line), f)) {
        char *s = trim(line);
        if (*s == '#' || *s == ';' || !*s)
            continue;
        if (*s == '[') {
            in_section = section_is(s, profile, config);
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in_section || !eq)
            continue;
        *eq = 0;
        if (strcmp(trim(s), key))
            continue;
        char *value = trim(eq + 1);
        found = strlen(value) < outsz ? 1 : -EINVAL;
        if (found == 1)
            memcpy(out, value, strlen(value) + 1);
    }
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    return found;
}

/* KEY of PROFILE: the credentials file first, then the config file. */
static int profile_value(const char *profile, const char *key, char *out, size_t outsz,
                         char *files, size_t filessz)
{
    char cred[4096], conf[4096];
    aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials", cred, sizeof(cred));
    aws_file("AWS_CONFIG_FILE", "config", conf, sizeof(conf));
    snprintf(files, filessz, "%s or %s", cred, conf);
    int rc = ini_value(cred, profile, false, key, out, outsz);
    return rc ? rc : ini_value(conf, profile, true, key, out, outsz);
}

static int env_value(const char *name, char *out, size_t outsz)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    if (strlen(v) >= outsz)
        return -EINVAL;
    memcpy(out, v, strlen(v) + 1);
    return 1;
}

static int creds_from_env(struct s3_creds *c, char *why, size_t whysz)
{
    int rc = env_value("AWS_ACCESS_KEY_ID", c->key_id, sizeof(c->key_id));
    if (rc == 1)
        rc = env_value("AWS_SECRET_ACCESS_KEY", c->secret, sizeof(c->secret));
    if (rc == 1 && env_value("AWS_SESSION_TOKEN", c->token, sizeof(c->token)) >= 0)
        return 1;
    if (rc == 0)
        snprintf(why, whysz, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    else
        snprintf(why, whysz, "a credential in the environment is too long");
    return rc == 0 ? -EACCES : -EINVAL;
}

static int creds_from_profile(const char *profile, struct s3_creds *c, char *why,
                              size_t whysz)
{
    char files[8300];
    int id = profile_value(profile, "aws_access_key_id", c->key_id, sizeof(c->key_id),
                           files, sizeof(files));
    int secret = profile_value(profile, "aws_secret_access_key", c->secret,
                               sizeof(c->secret), files, sizeof(files));
    int token = profile_value(profile, "aws_session_token", c->token, sizeof(c->token),
                              files, sizeof(files));
    if (id < 0 || secret < 0 || token < 0) {
        snprintf(why, whysz, "profile %s in %s: a credential is too long", profile, files);
        return -EINVAL;
    }
    if (id == 1 && secret == 1)
        return 0;
    snprintf(why, whysz,
             "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give "
             "aws_access_key_id and aws_secret_access_key in profile %s of %s",
             profile, files);
    return -EACCES;
}

int s3_load_creds(const char *profile, struct s3_creds *c, char *why, size_t whysz)
{
    memset(c, 0, sizeof(*c));
    int rc = 0;
    if (!profile && getenv("AWS_ACCESS_KEY_ID") && *getenv("AWS_ACCESS_KEY_ID"))
        rc = creds_from_env(c, why, whysz);
    if (rc == 1)
        return 0;
    if (rc == 0) {
        const char *env_profile = getenv("AWS_PROFILE");
        if (!profile)
            profile = env_profile && *env_profile ? env_profile : "default";
        rc = creds_from_profile(profile, c, why, whysz);
    }
    if (rc < 0)
        OPENSSL_cleanse(c, sizeof(*c));
    return rc;
}

static bool region_ok(const char *r)
{
    size_t n = strlen(r);
    if (!n || n > 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)r[i]) && !isdigit((unsigned char)r[i]) && r[i] != '-')
            return false;
    return true;
}

int s3_load_region(const char *opt, const char *profile, char *region, size_t size,
                   char *why, size_t whysz)
{
    const char *from = "the region option";
    int rc = 1;
    if (opt)
        snprintf(region, size, "%s", opt);
    else if ((rc = env_value("AWS_REGION", region, size)) != 0)
        from = "AWS_REGION";
    else if ((rc = env_value("AWS_DEFAULT_REGION", region, size)) != 0)
        from = "AWS_DEFAULT_REGION";
    else {
        const char *env_profile = getenv("AWS_PROFILE");
        char conf[4096];
        aws_file("AWS_CONFIG_FILE", "config", conf, sizeof(conf));
        if (!profile)
            profile = env_profile && *env_profile ? env_profile : "default";
        rc = ini_value(conf, profile, true, "region", region, size);
        from = "the config file";
        if (rc == 0) {
            snprintf(region, size, DEFAULT_REGION);
            rc = 1;
        }
    }
    if (rc < 0 || !region_ok(region)) {
        snprintf(why, whysz, "the region from %s is not a region name", from);
        return -EINVAL;
    }
    return 0;
}
