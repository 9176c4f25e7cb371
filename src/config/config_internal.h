/* config_internal.h: what the files of the config module share and nobody else sees.
 *
 * Every key is described once, in the key table of config_schema.c: its name, kind, range,
 * default, where its value goes in struct sp_config, and a line of documentation. Loading
 * (config.c) runs in three steps:
 *   1. a libyaml event scan finds syntax errors, aliases and extra documents;
 *   2. config_tree.c walks the libyaml node tree against the key table: it applies the defaults,
 *      reports unknown keys, wrong types, missing keys, out-of-range or malformed values, each
 *      with the line of its node, stores every valid value into a new struct sp_config, and
 *      records a map from dotted key path to line;
 *   3. config_validate.c runs the checks across entries (duplicates, ambiguous routes), finding
 *      lines in the path map.
 * config_doc.c writes the key tables of docs/config.md from the same key table. */
#ifndef SP_CONFIG_CONFIG_INTERNAL_H
#define SP_CONFIG_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <yaml.h>

#include "config/config.h"

/* ---- the key table (config_schema.c), read by config_tree.c and config_doc.c ---- */

enum sp_config_kind {
    SP_CONFIG_MAP,  /* mapping with the keys in `fields`, stored in a struct */
    SP_CONFIG_SEQ,  /* list of at least `min` entries shaped like `item`, stored in an array */
    SP_CONFIG_UINT, /* decimal unsigned integer in [min, max] */
    SP_CONFIG_BOOL, /* true/false (yes/no, on/off also accepted, any case) */
    SP_CONFIG_ENUM, /* one of the names of the key's values */
    SP_CONFIG_STR,  /* any string that `check` accepts */
};

/* How a string is stored at its key's offset. */
enum sp_config_store {
    SP_CONFIG_STORE_COPY = 0, /* char *: a copy */
    SP_CONFIG_STORE_FILE,     /* char *: resolved against the directory of the config file */
    SP_CONFIG_STORE_HOST,     /* char *: in lower case; "*" (any host) is stored as NULL */
    SP_CONFIG_STORE_STATUS,   /* status_min and status_max of the struct sp_health_check_conf
                                 at the offset, from "200" or "200-399" */
};

/* Default of an upstream's timeout: the value of the same key in the global timeouts section. */
#define SP_CONFIG_INHERIT UINT64_MAX

struct sp_config_walk;

/* What a value check may need besides the value. */
struct sp_config_check_ctx {
    const char *dir; /* borrowed; absolute directory of the config file */
};

/* Checks one string value. Returns NULL when it is fine, or an owned message saying why not. */
typedef char *(*sp_config_check_fn)(const struct sp_config_check_ctx *ctx, const char *value);

/* Checks rules between the keys of one mapping and completes its struct `obj`, after every key
 * was checked and stored on its own. Runs even when some of them failed. */
typedef void (*sp_config_finish_fn)(struct sp_config_walk *w, yaml_node_t *map, void *obj);

/* One key of a section. A table of them ends with a NULL name. Offsets are into the struct of
 * the section the key is in; a section (SP_CONFIG_MAP) has its own struct at its offset. */
struct sp_config_key {
    const char *name;         /* the key; NULL ends a table */
    enum sp_config_kind kind; /* what the value must be */
    bool required;            /* a missing key is an error */
    bool optional;            /* MAP: absent means off (enabled false, every field zero) */
    uint64_t min;             /* UINT: lowest value; SEQ: fewest entries; ENUM: first value */
    uint64_t max;             /* UINT: highest value */
    uint64_t def;             /* UINT, BOOL, ENUM: the default */
    const char *def_str;      /* STR: the default, stored as if written; NULL = none */
    size_t offset;            /* where the value goes */
    size_t size;              /* UINT, BOOL, ENUM: bytes at offset */
    size_t count_offset;      /* SEQ: where the size_t entry count goes */
    size_t item_size;         /* SEQ: bytes of one entry */
    size_t enabled_offset;    /* optional MAP: its bool set when present, in its own struct */
    const char *const *names; /* ENUM: NULL-terminated spellings, indexed by value */
    const char *(*name_of)(unsigned value); /* ENUM, instead of names: NULL past the last */
    sp_config_check_fn check;               /* STR: optional check of the value */
    enum sp_config_store store;             /* STR: how it is stored */
    const struct sp_config_key *fields;     /* MAP: its keys */
    const struct sp_config_key *item;       /* SEQ: each entry, stored at offset 0 of its slot */
    sp_config_finish_fn finish;             /* MAP: optional */
    const char *unit;                       /* docs: unit not in the name (_ms, _pct, _bytes) */
    const char *doc;                        /* docs: what the key means, one line */
    const char *doc_type;                   /* docs: instead of the type told by the kind */
    const char *doc_default;                /* docs: instead of the default told by def */
};

/* The whole document: a mapping whose struct is the struct sp_config. */
extern const struct sp_config_key sp_config_schema;

/* The spelling of value v of an ENUM key, or NULL past the last. */
const char *sp_config_choice(const struct sp_config_key *k, unsigned v);

/* The protocol names, indexed by enum sp_backend_proto. */
extern const char *const sp_config_backend_protos[];

/* ---- the walk (config_tree.c) ---- */

struct sp_config_line {
    char *path;    /* owned; dotted key path, "" for the document itself */
    unsigned line; /* 1-based */
};

struct sp_config_lines {
    struct sp_config_line *items; /* owned array */
    size_t count;
    size_t cap;
};

/* Returns the line recorded for `path`, or 0 when the path was not in the document. Lookups only
 * happen while reporting an error, so a linear scan is fine. */
unsigned sp_config_lines_find(const struct sp_config_lines *lines, const char *path);

/* Frees the map. A zeroed struct is fine. */
void sp_config_lines_fini(struct sp_config_lines *lines);

/* Walks the document against sp_config_schema, appending every problem to `errors` and recording
 * each key and list item in `lines`. `file` is the config's name for errors and config->path,
 * `dir` the absolute directory against which relative file names are resolved. Returns 0 and
 * *ret_config (free with sp_config_free) when nothing was wrong, else -EINVAL. */
int sp_config_tree_load(yaml_document_t *doc, const char *file, const char *dir,
                        struct sp_config **ret_config, struct sp_config_errors *errors,
                        struct sp_config_lines *lines);

/* For finish hooks, about the mapping they finish: */

/* Finds `key` in a mapping: returns its value node and, when ret_key is not NULL, its key node
 * in *ret_key; NULL when absent. The first occurrence wins (a repeat is already an error). */
yaml_node_t *sp_config_walk_get(struct sp_config_walk *w, yaml_node_t *map, const char *key,
                                yaml_node_t **ret_key);

/* The text of a scalar that passed the checks every scalar gets (not null, no NUL bytes);
 * NULL for anything else, NULL included. */
const char *sp_config_walk_text(const yaml_node_t *node);

/* The 1-based line of a node. */
unsigned sp_config_walk_line(const yaml_node_t *node);

/* Adds an error about `key`, a key of the mapping being finished. Takes `message`. */
void sp_config_walk_error(struct sp_config_walk *w, const char *key, unsigned line, char *message);

/* What value checks get. */
const struct sp_config_check_ctx *sp_config_walk_ctx(const struct sp_config_walk *w);

/* ---- helpers (config.c) ---- */

/* Appends one error. `key` may be "" when no key applies; `line` 0 when unknown. */
void sp_config_error_add(struct sp_config_errors *errors, const char *file, unsigned line,
                         const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Returns a newly allocated printf-formatted string. Aborts on OOM. */
char *sp_config_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Turns ASCII upper case letters of s into lower case, in place. Returns s. */
char *sp_config_lower(char *s);

/* Reads the whole file at `path` (at most 16 MiB). Returns 0, *ret_data (owned, NUL-terminated)
 * and *ret_len, or a negative errno (-EFBIG when too large). */
int sp_config_read_file(const char *path, char **ret_data, size_t *ret_len);

/* ---- value checks (config_validate.c) ---- */

char *sp_config_check_ip(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_hostport(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_file(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_name(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_host(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_path_prefix(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_method(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_server_name(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_header_name(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_cookie_name(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_query_name(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_secret(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_probe_path(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_status_range(const struct sp_config_check_ctx *ctx, const char *value);
char *sp_config_check_authority(const struct sp_config_check_ctx *ctx, const char *value);

/* Parses an expected status, "200" or "200-399" (lo <= hi, both within 100..599), into
 * *ret_min and *ret_max. Returns 0 or -EINVAL (outputs untouched). */
int sp_config_parse_status_range(const char *s, unsigned *ret_min, unsigned *ret_max);

/* Shortest sticky cookie secret accepted, in bytes (HMAC-SHA256 key; see docs/config.md). */
#define SP_CONFIG_SECRET_MIN_BYTES 16

/* Writes `s` double-quoted, escaped and cut to fit into out (cap bytes). Returns out. */
char *sp_config_quote(char *out, size_t cap, const char *s);

/* Parses a literal IPv4/IPv6 address and a port into *ss. Returns 0 or -EINVAL. */
int sp_config_parse_ip(const char *ip, uint16_t port, struct sockaddr_storage *ss,
                       socklen_t *ret_len);

/* Parses "IPv4:port" or "[IPv6]:port" into *ss. Returns 0 or -EINVAL. */
int sp_config_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *ret_len);

/* Joins a relative file name to `dir`; an absolute one is copied. Returns an owned string. */
char *sp_config_path_resolve(const char *dir, const char *name);

/* Runs the checks that look across entries of a built config (duplicate names, ids and
 * listeners, ambiguous routes, window sizes, a backend's tls against its protocol, client
 * certificate and key as a pair, default_upstream naming an upstream, the order of paired
 * passive_health, breaker and retries settings), appending errors with lines from `lines`.
 * Returns 0 when nothing was wrong, -EINVAL otherwise. */
int sp_config_cross_check(const struct sp_config *config, const struct sp_config_lines *lines,
                          struct sp_config_errors *errors);

#endif
