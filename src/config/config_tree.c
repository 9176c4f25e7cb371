/* config_tree.c: walks the libyaml node tree of a config against the key table
 * (config_schema.c) and builds the struct sp_config from it. Everything that can be decided from
 * one node alone is decided here, with its line: unknown and duplicate keys, wrong types, missing
 * required keys, out-of-range numbers, malformed values. Each section gets its defaults before
 * its keys are walked, and every value that passes is stored where its key says; a section's
 * finish hook then checks rules between its keys and completes its struct. The same table frees
 * a config. Nothing here knows a particular key. */
#include "config/config_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"

/* State of one walk. The current dotted path grows and shrinks as the walk descends. */
struct sp_config_walk {
    yaml_document_t *doc;            /* borrowed */
    const char *file;                /* borrowed; for errors */
    struct sp_config_check_ctx ctx;  /* passed to value checks */
    struct sp_config_errors *errors; /* borrowed; appended to */
    struct sp_config_lines *lines;   /* borrowed; appended to */
    char *path;                      /* owned; NUL-terminated current path */
    size_t path_len;                 /* strlen(path) */
    size_t path_cap;                 /* allocated bytes of path */
    bool failed;                     /* an error was added */
};

static void walk_node(struct sp_config_walk *w, const struct sp_config_key *k, yaml_node_t *node,
                      void *obj);

/* ---- storing values ---- */

static void *at(void *obj, size_t offset)
{
    return (char *)obj + offset;
}

/* Stores v into the `size` bytes at dst: an unsigned integer, bool or enum field. */
static void store_number(void *dst, size_t size, uint64_t v)
{
    uint8_t v8 = (uint8_t)v;
    uint16_t v16 = (uint16_t)v;
    uint32_t v32 = (uint32_t)v;
    const void *src = size == 1   ? (const void *)&v8
                      : size == 2 ? (const void *)&v16
                      : size == 4 ? (const void *)&v32
                                  : (const void *)&v;

    memcpy(dst, src, size);
}

/* Frees a stored string and NULLs it. Every string is wiped first: one of them is the sticky
 * cookie secret, which must not linger in freed heap. */
static void free_string(char **s)
{
    if (*s != NULL)
        explicit_bzero(*s, strlen(*s));
    free(*s);
    *s = NULL;
}

/* Stores a string the key's check accepted (or its default) over what was there. */
static void store_string(const struct sp_config_key *k, void *obj, const char *dir,
                         const char *value)
{
    struct sp_health_check_conf *hc = at(obj, k->offset);
    char **s = at(obj, k->offset);

    if (k->store == SP_CONFIG_STORE_STATUS) {
        (void)sp_config_parse_status_range(value, &hc->status_min, &hc->status_max); /* checked */
        return;
    }
    free_string(s);
    switch (k->store) {
    case SP_CONFIG_STORE_COPY:
        *s = sp_xstrdup(value);
        break;
    case SP_CONFIG_STORE_FILE:
        *s = sp_config_path_resolve(dir, value);
        break;
    case SP_CONFIG_STORE_HOST:
        *s = strcmp(value, "*") == 0 ? NULL : sp_config_lower(sp_xstrdup(value));
        break;
    case SP_CONFIG_STORE_STATUS:
        break;
    }
}

/* Gives every key of a section its default. A section inside it gets its defaults too, unless
 * it is optional: that one stays zero (off) until it is written. */
static void apply_defaults(const struct sp_config_key *fields, void *obj, const char *dir)
{
    for (const struct sp_config_key *k = fields; k->name != NULL; k++) {
        switch (k->kind) {
        case SP_CONFIG_MAP:
            if (!k->optional)
                apply_defaults(k->fields, at(obj, k->offset), dir);
            break;
        case SP_CONFIG_SEQ:
            break;
        case SP_CONFIG_UINT:
        case SP_CONFIG_BOOL:
        case SP_CONFIG_ENUM:
            store_number(at(obj, k->offset), k->size, k->def);
            break;
        case SP_CONFIG_STR:
            if (k->def_str != NULL)
                store_string(k, obj, dir, k->def_str);
            break;
        }
    }
}

static void free_value(const struct sp_config_key *k, void *obj);

static void free_fields(const struct sp_config_key *fields, void *obj)
{
    for (const struct sp_config_key *k = fields; k->name != NULL; k++)
        free_value(k, obj);
}

static void free_value(const struct sp_config_key *k, void *obj)
{
    char *items;
    size_t n;

    switch (k->kind) {
    case SP_CONFIG_MAP:
        free_fields(k->fields, at(obj, k->offset));
        break;
    case SP_CONFIG_SEQ:
        memcpy(&items, at(obj, k->offset), sizeof(items));
        memcpy(&n, at(obj, k->count_offset), sizeof(n));
        for (size_t i = 0; i < n; i++)
            free_value(k->item, items + i * k->item_size);
        free(items);
        memset(at(obj, k->offset), 0, sizeof(items));
        memset(at(obj, k->count_offset), 0, sizeof(n));
        break;
    case SP_CONFIG_STR:
        if (k->store != SP_CONFIG_STORE_STATUS)
            free_string(at(obj, k->offset));
        break;
    case SP_CONFIG_UINT:
    case SP_CONFIG_BOOL:
    case SP_CONFIG_ENUM:
        break;
    }
}

void sp_config_free(struct sp_config *config)
{
    if (config == NULL)
        return;
    free_fields(sp_config_schema.fields, config);
    free(config->path);
    config->path = NULL;
    free(config);
}

const char *sp_config_choice(const struct sp_config_key *k, unsigned v)
{
    return k->name_of != NULL ? k->name_of(v) : k->names[v];
}

/* ---- the walk ---- */

unsigned sp_config_walk_line(const yaml_node_t *node)
{
    return (unsigned)node->start_mark.line + 1;
}

/* Appends to the current path; returns the old length, to give back to path_pop. */
static size_t path_push(struct sp_config_walk *w, const char *key, size_t index)
{
    size_t old = w->path_len;
    char *part = key != NULL ? sp_config_strf("%s%s", old > 0 ? "." : "", key)
                             : sp_config_strf("[%zu]", index);
    size_t n = strlen(part);

    if (old + n + 1 > w->path_cap) {
        w->path_cap = (old + n + 1) * 2;
        w->path = sp_xrealloc(w->path, w->path_cap);
    }
    memcpy(w->path + old, part, n + 1);
    w->path_len = old + n;
    free(part);
    return old;
}

static void path_pop(struct sp_config_walk *w, size_t old)
{
    w->path_len = old;
    w->path[old] = '\0';
}

static void record_line(struct sp_config_walk *w, unsigned line)
{
    struct sp_config_lines *l = w->lines;

    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->items = sp_xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->count].path = sp_xstrdup(w->path);
    l->items[l->count].line = line;
    l->count++;
}

static void walk_error(struct sp_config_walk *w, unsigned line, char *message)
{
    sp_config_error_add(w->errors, w->file, line, w->path, "%s", message);
    free(message);
    w->failed = true;
}

void sp_config_walk_error(struct sp_config_walk *w, const char *key, unsigned line, char *message)
{
    size_t old = path_push(w, key, 0);

    walk_error(w, line, message);
    path_pop(w, old);
}

const struct sp_config_check_ctx *sp_config_walk_ctx(const struct sp_config_walk *w)
{
    return &w->ctx;
}

static const char *scalar_text(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

/* Describes a node for "expected X, got Y" messages. Returns an owned string. */
static char *describe(const yaml_node_t *node)
{
    char q[80];

    switch (node->type) {
    case YAML_MAPPING_NODE:
        return sp_config_strf("a mapping");
    case YAML_SEQUENCE_NODE:
        return sp_config_strf("a list");
    case YAML_SCALAR_NODE:
        return sp_config_strf("%s", sp_config_quote(q, sizeof(q), scalar_text(node)));
    case YAML_NO_NODE:
        break;
    }
    return sp_config_strf("nothing");
}

static void type_error(struct sp_config_walk *w, const yaml_node_t *node, const char *expected)
{
    char *got = describe(node);

    walk_error(w, sp_config_walk_line(node), sp_config_strf("expected %s, got %s", expected, got));
    free(got);
}

static const struct sp_config_key *find_field(const struct sp_config_key *fields, const char *key)
{
    for (const struct sp_config_key *f = fields; f->name != NULL; f++) {
        if (strcmp(f->name, key) == 0)
            return f;
    }
    return NULL;
}

/* The first pair of the mapping, before `end`, whose key is `key`; NULL when there is none. */
static yaml_node_pair_t *find_pair(struct sp_config_walk *w, yaml_node_t *map,
                                   const yaml_node_pair_t *end, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < end; p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);

        if (k != NULL && k->type == YAML_SCALAR_NODE && strcmp(scalar_text(k), key) == 0)
            return p;
    }
    return NULL;
}

yaml_node_t *sp_config_walk_get(struct sp_config_walk *w, yaml_node_t *map, const char *key,
                                yaml_node_t **ret_key)
{
    yaml_node_pair_t *p = find_pair(w, map, map->data.mapping.pairs.top, key);

    if (p == NULL)
        return NULL;
    if (ret_key != NULL)
        *ret_key = yaml_document_get_node(w->doc, p->key);
    return yaml_document_get_node(w->doc, p->value);
}

static void walk_pair(struct sp_config_walk *w, const struct sp_config_key *s, yaml_node_t *map,
                      yaml_node_pair_t *pair, void *obj)
{
    yaml_node_t *key = yaml_document_get_node(w->doc, pair->key);
    yaml_node_t *value = yaml_document_get_node(w->doc, pair->value);
    const struct sp_config_key *field;
    size_t old;

    if (key == NULL || value == NULL)
        return; /* libyaml never builds such a pair */
    if (key->type != YAML_SCALAR_NODE) {
        type_error(w, key, "a key name");
        return;
    }
    old = path_push(w, scalar_text(key), 0);
    field = find_field(s->fields, scalar_text(key));
    if (field == NULL) {
        walk_error(w, sp_config_walk_line(key), sp_config_strf("unknown key"));
    } else if (find_pair(w, map, pair, scalar_text(key)) != NULL) {
        walk_error(w, sp_config_walk_line(key), sp_config_strf("duplicate key"));
    } else {
        record_line(w, sp_config_walk_line(key));
        walk_node(w, field, value, obj);
    }
    path_pop(w, old);
}

/* Walks a mapping whose struct, `obj`, already has its defaults. */
static void walk_map(struct sp_config_walk *w, const struct sp_config_key *s, yaml_node_t *node,
                     void *obj)
{
    if (node->type != YAML_MAPPING_NODE) {
        type_error(w, node, "a mapping");
        return;
    }
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++)
        walk_pair(w, s, node, p, obj);
    for (const struct sp_config_key *f = s->fields; f->name != NULL; f++) {
        if (f->required && find_pair(w, node, node->data.mapping.pairs.top, f->name) == NULL)
            sp_config_walk_error(w, f->name, sp_config_walk_line(node),
                                 sp_config_strf("required key missing"));
    }
    if (s->finish != NULL)
        s->finish(w, node, obj);
}

/* Walks a list into a new array of entries, each with its defaults, at the key's offset. */
static void walk_seq(struct sp_config_walk *w, const struct sp_config_key *s, yaml_node_t *node,
                     void *obj)
{
    yaml_node_item_t *start, *top;
    char *items;
    size_t n;

    if (node->type != YAML_SEQUENCE_NODE) {
        type_error(w, node, "a list");
        return;
    }
    start = node->data.sequence.items.start;
    top = node->data.sequence.items.top;
    n = (size_t)(top - start);
    if (n < s->min) {
        walk_error(w, sp_config_walk_line(node),
                   sp_config_strf("must have at least %llu entr%s", (unsigned long long)s->min,
                                  s->min == 1 ? "y" : "ies"));
        return;
    }
    items = sp_xcalloc(n, s->item_size);
    memcpy(at(obj, s->offset), &items, sizeof(items));
    memcpy(at(obj, s->count_offset), &n, sizeof(n));
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(w->doc, start[i]);
        size_t old = path_push(w, NULL, i);

        if (s->item->kind == SP_CONFIG_MAP)
            apply_defaults(s->item->fields, items + i * s->item_size, w->ctx.dir);
        if (item != NULL) {
            record_line(w, sp_config_walk_line(item));
            walk_node(w, s->item, item, items + i * s->item_size);
        }
        path_pop(w, old);
    }
}

/* Parses a plain decimal number: no sign, no leading zeros, no 0x (which YAML 1.1 would read as
 * hex or octal, which nobody means in a config). Returns 0, -EINVAL or -ERANGE. */
static int parse_decimal(const char *s, uint64_t *ret_value)
{
    uint64_t v = 0;

    if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
        return -EINVAL;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *ret_value = v;
    return 0;
}

static void range_error(struct sp_config_walk *w, const struct sp_config_key *k, yaml_node_t *node)
{
    const char *v = scalar_text(node);

    if (k->max == UINT64_MAX)
        walk_error(w, sp_config_walk_line(node),
                   sp_config_strf("must be at least %llu, got %s", (unsigned long long)k->min, v));
    else
        walk_error(w, sp_config_walk_line(node),
                   sp_config_strf("must be between %llu and %llu, got %s",
                                  (unsigned long long)k->min, (unsigned long long)k->max, v));
}

/* Checks a number; returns true and *ret_value when it is fine. */
static bool check_uint(struct sp_config_walk *w, const struct sp_config_key *k, yaml_node_t *node,
                       uint64_t *ret_value)
{
    int rv = parse_decimal(scalar_text(node), ret_value);

    if (rv == -EINVAL)
        type_error(w, node, "an unsigned integer");
    else if (rv == -ERANGE || *ret_value < k->min || *ret_value > k->max)
        range_error(w, k, node);
    else
        return true;
    return false;
}

static bool check_bool(struct sp_config_walk *w, yaml_node_t *node, uint64_t *ret_value)
{
    static const char *const accepted[] = {"false", "true", "no", "yes", "off", "on"};
    const char *v = scalar_text(node);

    for (size_t i = 0; i < SP_ARRAY_LEN(accepted); i++) {
        if (strcasecmp(v, accepted[i]) == 0) {
            *ret_value = i % 2;
            return true;
        }
    }
    type_error(w, node, "true or false");
    return false;
}

static bool check_enum(struct sp_config_walk *w, const struct sp_config_key *k, yaml_node_t *node,
                       uint64_t *ret_value)
{
    const char *v = scalar_text(node), *name;
    char *list = NULL;
    char q[80];

    for (unsigned i = (unsigned)k->min; (name = sp_config_choice(k, i)) != NULL; i++) {
        if (strcmp(v, name) == 0) {
            *ret_value = i;
            return true;
        }
    }
    for (unsigned i = (unsigned)k->min; (name = sp_config_choice(k, i)) != NULL; i++) {
        char *next =
            list == NULL ? sp_config_strf("%s", name) : sp_config_strf("%s, %s", list, name);

        free(list);
        list = next;
    }
    walk_error(w, sp_config_walk_line(node),
               sp_config_strf("unknown value %s: expected %s%s", sp_config_quote(q, sizeof(q), v),
                              sp_config_choice(k, (unsigned)k->min + 1) != NULL ? "one of " : "",
                              list));
    free(list);
    return false;
}

/* True for an empty or null plain scalar such as `key:` or `key: ~`. */
static bool is_null(const yaml_node_t *node)
{
    const char *v = scalar_text(node);

    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

const char *sp_config_walk_text(const yaml_node_t *node)
{
    if (node == NULL || node->type != YAML_SCALAR_NODE || is_null(node) ||
        strlen(scalar_text(node)) != node->data.scalar.length)
        return NULL;
    return scalar_text(node);
}

/* Checks a string with the key's check; returns true when it is fine. */
static bool check_str(struct sp_config_walk *w, const struct sp_config_key *k, yaml_node_t *node)
{
    char *msg = k->check != NULL ? k->check(&w->ctx, scalar_text(node)) : NULL;

    if (msg == NULL)
        return true;
    walk_error(w, sp_config_walk_line(node), msg);
    return false;
}

static void walk_scalar(struct sp_config_walk *w, const struct sp_config_key *k, yaml_node_t *node,
                        void *obj)
{
    static const char *const expected[] = {
        [SP_CONFIG_UINT] = "an unsigned integer",
        [SP_CONFIG_BOOL] = "true or false",
        [SP_CONFIG_ENUM] = "a string",
        [SP_CONFIG_STR] = "a string",
    };
    uint64_t v = 0;
    bool ok = false;

    if (node->type != YAML_SCALAR_NODE) {
        type_error(w, node, expected[k->kind]);
        return;
    }
    if (is_null(node)) {
        walk_error(w, sp_config_walk_line(node), sp_config_strf("missing value"));
        return;
    }
    if (strlen(scalar_text(node)) != node->data.scalar.length) {
        walk_error(w, sp_config_walk_line(node), sp_config_strf("must not contain NUL bytes"));
        return;
    }
    switch (k->kind) {
    case SP_CONFIG_UINT:
        ok = check_uint(w, k, node, &v);
        break;
    case SP_CONFIG_BOOL:
        ok = check_bool(w, node, &v);
        break;
    case SP_CONFIG_ENUM:
        ok = check_enum(w, k, node, &v);
        break;
    case SP_CONFIG_STR:
        if (check_str(w, k, node))
            store_string(k, obj, w->ctx.dir, scalar_text(node));
        return;
    case SP_CONFIG_MAP:
    case SP_CONFIG_SEQ:
        return; /* not scalars: walk_node never sends them here */
    }
    if (ok)
        store_number(at(obj, k->offset), k->size, v);
}

/* Walks the value of key k, which goes into obj, the struct of the section the key is in. */
static void walk_node(struct sp_config_walk *w, const struct sp_config_key *k, yaml_node_t *node,
                      void *obj)
{
    void *sub = at(obj, k->offset);

    switch (k->kind) {
    case SP_CONFIG_MAP:
        if (k->optional && node->type == YAML_MAPPING_NODE) {
            apply_defaults(k->fields, sub, w->ctx.dir);
            *(bool *)at(sub, k->enabled_offset) = true;
        }
        walk_map(w, k, node, sub);
        break;
    case SP_CONFIG_SEQ:
        walk_seq(w, k, node, obj);
        break;
    case SP_CONFIG_UINT:
    case SP_CONFIG_BOOL:
    case SP_CONFIG_ENUM:
    case SP_CONFIG_STR:
        walk_scalar(w, k, node, obj);
        break;
    }
}

int sp_config_tree_load(yaml_document_t *doc, const char *file, const char *dir,
                        struct sp_config **ret_config, struct sp_config_errors *errors,
                        struct sp_config_lines *lines)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    struct sp_config_walk w = {
        .doc = doc,
        .file = file,
        .ctx = {.dir = dir},
        .errors = errors,
        .lines = lines,
        .path = sp_xstrdup(""),
        .path_len = 0,
        .path_cap = 1,
    };
    struct sp_config *config;

    if (root == NULL) {
        walk_error(&w, 0, sp_config_strf("the configuration is empty"));
        free(w.path);
        return -EINVAL;
    }
    record_line(&w, sp_config_walk_line(root));
    if (root->type != YAML_MAPPING_NODE) {
        char *got = describe(root);

        walk_error(&w, sp_config_walk_line(root),
                   sp_config_strf("the configuration must be a mapping of keys, got %s", got));
        free(got);
        free(w.path);
        return -EINVAL;
    }
    config = sp_xcalloc(1, sizeof(*config));
    config->path = sp_xstrdup(file);
    apply_defaults(sp_config_schema.fields, config, dir);
    walk_node(&w, &sp_config_schema, root, config);
    free(w.path);
    if (w.failed) {
        sp_config_free(config);
        return -EINVAL;
    }
    *ret_config = config;
    return 0;
}

unsigned sp_config_lines_find(const struct sp_config_lines *lines, const char *path)
{
    for (size_t i = 0; i < lines->count; i++) {
        if (strcmp(lines->items[i].path, path) == 0)
            return lines->items[i].line;
    }
    return 0;
}

void sp_config_lines_fini(struct sp_config_lines *lines)
{
    for (size_t i = 0; i < lines->count; i++) {
        free(lines->items[i].path);
        lines->items[i].path = NULL;
    }
    free(lines->items);
    lines->items = NULL;
    lines->count = 0;
    lines->cap = 0;
}
