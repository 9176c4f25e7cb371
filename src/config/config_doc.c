/* config_doc.c: writes the key tables of docs/config.md from the key table (config_schema.c):
 * one row per key with its type, range, default and meaning. tools/config_doc.c rewrites the
 * file with it, and tests/unit/test_config_doc.c fails while the file is not current. */
#include "config/config_doc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "core/util.h"

#define BEGIN_MARKER "<!-- keys: "
#define END_MARKER "<!-- end keys -->"

/* Writes s, with "|" escaped as a markdown table cell needs. */
static void put_cell(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

/* The unit of a number: the key's own, else the one its name ends in (units go in names). */
static const char *unit_of(const struct sp_config_key *k)
{
    static const char *const suffixes[][2] = {{"_ms", "ms"}, {"_pct", "%"}, {"_bytes", "bytes"}};
    size_t n = strlen(k->name);

    for (size_t i = 0; k->unit == NULL && i < SP_ARRAY_LEN(suffixes); i++) {
        size_t len = strlen(suffixes[i][0]);

        if (n > len && strcmp(k->name + n - len, suffixes[i][0]) == 0)
            return suffixes[i][1];
    }
    return k->unit;
}

static void put_type(FILE *f, const struct sp_config_key *k)
{
    const char *name, *unit = unit_of(k);

    if (k->doc_type != NULL) {
        put_cell(f, k->doc_type);
        return;
    }
    switch (k->kind) {
    case SP_CONFIG_MAP:
        fputs("mapping", f);
        break;
    case SP_CONFIG_SEQ:
        fprintf(f, "list%s, at least %llu", k->item->kind == SP_CONFIG_STR ? " of strings" : "",
                (unsigned long long)k->min);
        break;
    case SP_CONFIG_UINT:
        fprintf(f, "uint %llu..", (unsigned long long)k->min);
        if (k->max == UINT64_MAX)
            fputs("2^64-1", f);
        else
            fprintf(f, "%llu", (unsigned long long)k->max);
        if (unit != NULL)
            fprintf(f, " (%s)", unit);
        break;
    case SP_CONFIG_BOOL:
        fputs("bool", f);
        break;
    case SP_CONFIG_ENUM:
        for (unsigned v = (unsigned)k->min; (name = sp_config_choice(k, v)) != NULL; v++)
            fprintf(f, "%s`%s`", v > k->min ? " \\| " : "", name);
        break;
    case SP_CONFIG_STR:
        fputs(k->store == SP_CONFIG_STORE_FILE ? "file" : "string", f);
        break;
    }
}

/* `section` is the dotted path of the section the key is in. */
static void put_default(FILE *f, const struct sp_config_key *k, const char *section)
{
    const char *dot = strrchr(section, '.');

    if (k->doc_default != NULL || k->required) {
        put_cell(f, k->doc_default != NULL ? k->doc_default : "**required**");
        return;
    }
    switch (k->kind) {
    case SP_CONFIG_MAP:
        fputs(k->optional ? "none (off)" : "all defaults", f);
        break;
    case SP_CONFIG_SEQ:
        break;
    case SP_CONFIG_UINT:
        if (k->def == SP_CONFIG_INHERIT) /* the top-level section of the same name */
            fprintf(f, "`%s.%s`", dot != NULL ? dot + 1 : section, k->name);
        else
            fprintf(f, "`%llu`", (unsigned long long)k->def);
        break;
    case SP_CONFIG_BOOL:
        fputs(k->def ? "`true`" : "`false`", f);
        break;
    case SP_CONFIG_ENUM:
        fprintf(f, "`%s`", sp_config_choice(k, (unsigned)k->def));
        break;
    case SP_CONFIG_STR:
        if (k->def_str != NULL)
            fprintf(f, "`%s`", k->def_str);
        else
            fputs("none", f);
        break;
    }
}

static void put_table(FILE *f, const struct sp_config_key *section, const char *path)
{
    fputs("| key | type | default | meaning |\n|---|---|---|---|\n", f);
    for (const struct sp_config_key *k = section->fields; k->name != NULL; k++) {
        fprintf(f, "| `%s` | ", k->name);
        put_type(f, k);
        fputs(" | ", f);
        put_default(f, k, path);
        fputs(" | ", f);
        put_cell(f, k->doc);
        fputs(" |\n", f);
    }
}

/* The section (a mapping of keys) at dotted `path`, "." for the top level; NULL when none. */
static const struct sp_config_key *find_section(const char *path)
{
    const struct sp_config_key *s = &sp_config_schema;

    if (strcmp(path, ".") == 0)
        return s;
    while (s != NULL && *path != '\0') {
        size_t n = strcspn(path, ".");
        const struct sp_config_key *k = s->fields;

        while (k->name != NULL && (strlen(k->name) != n || strncmp(k->name, path, n) != 0))
            k++;
        s = k->name == NULL ? NULL : k->kind == SP_CONFIG_SEQ ? k->item : k;
        if (s != NULL && s->kind != SP_CONFIG_MAP)
            s = NULL;
        path += n + (path[n] == '.');
    }
    return s;
}

/* Writes into f the table the begin marker at `line` asks for. Returns where its end marker
 * starts, or NULL and *ret_problem. */
static const char *put_marked_table(FILE *f, const char *line, char **ret_problem)
{
    const char *end = strstr(line, "\n" END_MARKER);
    const char *next = strstr(line + 1, "\n" BEGIN_MARKER);
    const struct sp_config_key *section;
    char path[128];

    if (sscanf(line, BEGIN_MARKER "%127s -->", path) != 1 || end == NULL ||
        (next != NULL && next < end)) {
        *ret_problem = sp_config_strf("a \"" BEGIN_MARKER "SECTION -->\" line without a section "
                                      "or without its \"" END_MARKER "\" line");
        return NULL;
    }
    section = find_section(path);
    if (section == NULL) {
        *ret_problem = sp_config_strf("\"" BEGIN_MARKER "%s -->\": no such section", path);
        return NULL;
    }
    put_table(f, section, path);
    return end + 1;
}

/* The path of the first section at or below `s`, at `path`, that md has no table for (owned);
 * NULL when each has one. */
static char *find_missing(const struct sp_config_key *s, const char *path, const char *md)
{
    char *marker = sp_config_strf(BEGIN_MARKER "%s -->\n", path);
    char *missing = strstr(md, marker) == NULL ? sp_xstrdup(path) : NULL;

    free(marker);
    for (const struct sp_config_key *k = s->fields; missing == NULL && k->name != NULL; k++) {
        const struct sp_config_key *sub = k->kind == SP_CONFIG_SEQ ? k->item : k;
        char *child;

        if (sub->kind != SP_CONFIG_MAP)
            continue;
        child =
            strcmp(path, ".") == 0 ? sp_xstrdup(k->name) : sp_config_strf("%s.%s", path, k->name);
        missing = find_missing(sub, child, md);
        free(child);
    }
    return missing;
}

/* Returns md with every key table written afresh (owned), or NULL and *ret_problem. */
static char *regenerate(const char *md, char **ret_problem)
{
    char *out = NULL, *missing = find_missing(&sp_config_schema, ".", md);
    size_t out_len = 0;
    const char *p = md;
    FILE *f;

    if (missing != NULL) {
        *ret_problem = sp_config_strf("no \"" BEGIN_MARKER "%s -->\" table", missing);
        free(missing);
        return NULL;
    }
    f = open_memstream(&out, &out_len);
    if (f == NULL)
        abort(); /* OOM: see sp_xmalloc */
    while (p != NULL && *p != '\0') {
        size_t n = strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n');

        fwrite(p, 1, n, f);
        p = strncmp(p, BEGIN_MARKER, strlen(BEGIN_MARKER)) == 0
                ? put_marked_table(f, p, ret_problem)
                : p + n;
    }
    if (fclose(f) != 0 || out == NULL)
        abort(); /* a memory stream only fails on OOM */
    if (p == NULL) {
        free(out);
        return NULL;
    }
    return out;
}

/* Says on which line `have` first differs from `want`. Returns an owned message. */
static char *first_difference(const char *path, const char *have, const char *want)
{
    unsigned line = 1;

    for (; *have != '\0' && *have == *want; have++, want++) {
        if (*have == '\n')
            line++;
    }
    while (line > 1 && have[-1] != '\n') {
        have--;
        want--;
    }
    return sp_config_strf("%s:%u: differs from the key table (src/config/config_schema.c): it has "
                          "\"%.*s\" where the table gives \"%.*s\"; run spooky-config-doc %s",
                          path, line, (int)strcspn(have, "\n"), have, (int)strcspn(want, "\n"),
                          want, path);
}

static int write_file(const char *path, const char *text, char **ret_problem)
{
    FILE *f = fopen(path, "w");
    int rv = 0;

    if (f == NULL)
        rv = -errno;
    else if (fputs(text, f) == EOF)
        rv = -EIO;
    if (f != NULL && fclose(f) == EOF && rv == 0)
        rv = -errno;
    if (rv < 0)
        *ret_problem = sp_config_strf("%s: cannot write: %s", path, strerror(-rv));
    return rv;
}

int sp_config_doc_sync(const char *path, bool write, char **ret_problem)
{
    char *md = NULL, *fresh;
    size_t len;
    int rv = sp_config_read_file(path, &md, &len);

    if (rv < 0) {
        *ret_problem = sp_config_strf("%s: cannot read: %s", path, strerror(-rv));
        return rv;
    }
    fresh = regenerate(md, ret_problem);
    if (fresh == NULL) {
        rv = -EINVAL;
    } else if (strcmp(md, fresh) != 0 && !write) {
        *ret_problem = first_difference(path, md, fresh);
        rv = -ESTALE;
    } else if (strcmp(md, fresh) != 0) {
        rv = write_file(path, fresh, ret_problem);
    }
    free(fresh);
    free(md);
    return rv;
}
