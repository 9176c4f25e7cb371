/* spooky-config-doc: rewrites the key tables of docs/config.md from the key table of the config
 * module (src/config/config_schema.c). With --check it only compares, as the unit test
 * test_config_doc does, and exits 1 when a table is out of date.
 *
 *   spooky-config-doc [--check] [FILE]      FILE defaults to docs/config.md */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_doc.h"

int main(int argc, char **argv)
{
    bool check = argc > 1 && strcmp(argv[1], "--check") == 0;
    const char *path = argc > 1 + check ? argv[1 + check] : "docs/config.md";
    char *problem = NULL;

    if (sp_config_doc_sync(path, !check, &problem) < 0) {
        fprintf(stderr, "spooky-config-doc: %s\n", problem);
        free(problem);
        return 1;
    }
    return 0;
}
