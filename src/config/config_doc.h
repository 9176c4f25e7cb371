/* config_doc.h: the key tables of docs/config.md, written from the key table of the config
 * module (config_schema.c), so that the reference cannot drift from the code. */
#ifndef SP_CONFIG_CONFIG_DOC_H
#define SP_CONFIG_CONFIG_DOC_H

#include <stdbool.h>

/* Brings the key tables of the markdown file at `path` in line with the key table. A key table
 * is the lines between a line "<!-- keys: SECTION -->" and the next "<!-- end keys -->", where
 * SECTION is the dotted path of a section ("upstreams.pool"; "." for the top level).
 * With `write` the file is rewritten when a table differs; without, it is only compared.
 * Returns 0 when every table is current (or was rewritten); -ESTALE when one differs and `write`
 * is false; -EINVAL when a marker names no section, an end marker is missing or a section has no
 * table; a negative errno when the file cannot be read or written. On failure *ret_problem is an
 * owned message saying what (for -ESTALE, the first line that differs). Main thread. */
int sp_config_doc_sync(const char *path, bool write, char **ret_problem);

#endif
