/* config.c: sp_config_load and friends. Reads the file once, finds YAML syntax errors and
 * aliases with a libyaml event scan, builds the struct sp_config from the node tree by the key
 * table (config_tree.c, config_schema.c), and runs the checks across entries
 * (config_validate.c). See config_internal.h for the steps. */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config/config_internal.h"
#include "core/util.h"

/* A config larger than this is a mistake (or not a config). */
#define MAX_CONFIG_BYTES (16u << 20)

char *sp_config_strf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n == -1)
        abort(); /* OOM: see sp_xmalloc */
    return s;
}

char *sp_config_lower(char *s)
{
    for (char *p = s; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    return s;
}

void sp_config_error_add(struct sp_config_errors *errors, const char *file, unsigned line,
                         const char *key, const char *fmt, ...)
{
    struct sp_config_error *e;
    va_list ap;
    int n;

    errors->items = sp_xrealloc(errors->items, (errors->count + 1) * sizeof(*errors->items));
    e = &errors->items[errors->count++];
    e->file = sp_xstrdup(file);
    e->line = line;
    e->key = sp_xstrdup(key);
    va_start(ap, fmt);
    n = vasprintf(&e->message, fmt, ap);
    va_end(ap);
    if (n == -1)
        abort(); /* OOM: see sp_xmalloc */
}

static void error_fini(struct sp_config_error *e)
{
    free(e->file);
    e->file = NULL;
    free(e->key);
    e->key = NULL;
    free(e->message);
    e->message = NULL;
}

void sp_config_errors_fini(struct sp_config_errors *errors)
{
    for (size_t i = 0; i < errors->count; i++)
        error_fini(&errors->items[i]);
    free(errors->items);
    errors->items = NULL;
    errors->count = 0;
}

/* Drops the errors added after the first `keep`. */
static void errors_truncate(struct sp_config_errors *errors, size_t keep)
{
    while (errors->count > keep)
        error_fini(&errors->items[--errors->count]);
}

/* Stable sort by line, so errors come out in file order whichever check found them. */
static void errors_sort(struct sp_config_errors *errors, size_t from)
{
    for (size_t i = from + 1; i < errors->count; i++) {
        struct sp_config_error e = errors->items[i];
        size_t j = i;

        for (; j > from && errors->items[j - 1].line > e.line; j--)
            errors->items[j] = errors->items[j - 1];
        errors->items[j] = e;
    }
}

char *sp_config_error_format(const struct sp_config_error *err, char *out, size_t cap)
{
    char line[16] = "";
    bool has_key = err->key != NULL && err->key[0] != '\0';

    if (cap == 0)
        return out;
    if (err->line > 0)
        (void)snprintf(line, sizeof(line), ":%u", err->line);
    (void)snprintf(out, cap, "%s%s: %s%s%s", err->file != NULL ? err->file : "?", line,
                   has_key ? err->key : "", has_key ? ": " : "",
                   err->message != NULL ? err->message : "");
    return out;
}

int sp_config_read_file(const char *path, char **ret_data, size_t *ret_len)
{
    size_t len = 0, cap = 4096;
    char *data;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    int rv;

    if (fd == -1)
        return -errno;
    data = sp_xmalloc(cap + 1);
    for (;;) {
        ssize_t n = read(fd, data + len, cap - len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            rv = -errno;
            goto out_free_data;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > MAX_CONFIG_BYTES) {
            rv = -EFBIG;
            goto out_free_data;
        }
        if (len == cap) {
            cap *= 2;
            data = sp_xrealloc(data, cap + 1);
        }
    }
    (void)close(fd);
    data[len] = '\0';
    *ret_data = data;
    *ret_len = len;
    return 0;

out_free_data:
    free(data);
    (void)close(fd);
    return rv;
}

/* Returns the absolute directory of `path` in *ret_dir (owned), or a negative errno. */
static int config_dir(const char *path, char **ret_dir)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL   ? sp_xstrdup(".")
                : slash == path ? sp_xstrdup("/")
                                : sp_xstrndup(path, (size_t)(slash - path));
    char *abs = realpath(dir, NULL);
    int rv = abs == NULL ? -errno : 0;

    free(dir);
    if (rv == 0)
        *ret_dir = abs;
    return rv;
}

static void scan_event(const char *file, const yaml_event_t *ev, unsigned *docs,
                       struct sp_config_errors *errors)
{
    unsigned line = (unsigned)ev->start_mark.line + 1;

    if (ev->type == YAML_ALIAS_EVENT)
        sp_config_error_add(errors, file, line, "", "YAML aliases are not supported (*%s)",
                            (const char *)ev->data.alias.anchor);
    if (ev->type == YAML_DOCUMENT_START_EVENT && ++*docs == 2)
        sp_config_error_add(errors, file, line, "",
                            "only one YAML document is allowed per configuration file");
}

/* Scans the YAML events: a syntax error becomes the one and only error, with the line where
 * parsing failed; aliases and extra documents are refused (a tree walk that follows aliases
 * could be made to do exponential work). Returns 0 or -EINVAL. */
static int scan_yaml(const char *file, const char *data, size_t len,
                     struct sp_config_errors *errors)
{
    size_t first = errors->count;
    yaml_parser_t parser;
    yaml_event_t ev;
    unsigned docs = 0;
    bool done = false;

    if (!yaml_parser_initialize(&parser))
        abort(); /* only fails on OOM: see sp_xmalloc */
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            errors_truncate(errors, first);
            sp_config_error_add(errors, file, (unsigned)parser.problem_mark.line + 1, "",
                                "invalid YAML: %s",
                                parser.problem != NULL ? parser.problem : "syntax error");
            break;
        }
        scan_event(file, &ev, &docs, errors);
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return errors->count > first ? -EINVAL : 0;
}

/* Loads the node tree into a new config: every error that one node alone shows, with its line. */
static int load_tree(const char *file, const char *dir, const char *data, size_t len,
                     struct sp_config **ret_config, struct sp_config_errors *errors,
                     struct sp_config_lines *lines)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    int rv;

    if (!yaml_parser_initialize(&parser))
        abort(); /* only fails on OOM: see sp_xmalloc */
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        /* scan_yaml accepted the same bytes, so this is OOM or a libyaml bug */
        sp_config_error_add(errors, file, (unsigned)parser.problem_mark.line + 1, "",
                            "invalid YAML: %s",
                            parser.problem != NULL ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    rv = sp_config_tree_load(&doc, file, dir, ret_config, errors, lines);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rv;
}

/* Runs the loading steps on the file's bytes. */
static int load_data(const char *path, const char *dir, const char *data, size_t len,
                     struct sp_config **ret_config, struct sp_config_errors *errors)
{
    struct sp_config_lines lines = {0};
    struct sp_config *config = NULL;
    int rv;

    rv = scan_yaml(path, data, len, errors);
    if (rv < 0)
        return rv;
    rv = load_tree(path, dir, data, len, &config, errors, &lines);
    if (rv < 0)
        goto out_fini_lines;
    rv = sp_config_cross_check(config, &lines, errors);
    if (rv < 0) {
        sp_config_free(config);
        goto out_fini_lines;
    }
    *ret_config = config;

out_fini_lines:
    sp_config_lines_fini(&lines);
    return rv;
}

int sp_config_load(const char *path, struct sp_config **ret_config, struct sp_config_errors *errors)
{
    size_t first = errors->count;
    char *data = NULL, *dir = NULL;
    size_t len = 0;
    int rv;

    rv = sp_config_read_file(path, &data, &len);
    if (rv < 0) {
        sp_config_error_add(errors, path, 0, "", "cannot read the configuration: %s",
                            rv == -EFBIG ? "larger than 16 MiB" : strerror(-rv));
        return rv;
    }
    rv = config_dir(path, &dir);
    if (rv < 0) {
        sp_config_error_add(errors, path, 0, "", "cannot resolve the configuration's directory: %s",
                            strerror(-rv));
        goto out_free_data;
    }
    rv = load_data(path, dir, data, len, ret_config, errors);
    errors_sort(errors, first);
    free(dir);
out_free_data:
    free(data);
    return rv;
}
