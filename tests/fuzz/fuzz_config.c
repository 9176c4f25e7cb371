/* libFuzzer target: the configuration loader (libyaml event scan, the table-driven tree walk
 * that builds the config, and the checks across entries) on arbitrary bytes. Every input must
 * end in a config or in errors, never in a crash, a leak or an error without a message. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    struct sp_config_errors errors = {0};
    struct sp_config *cfg = NULL;
    FILE *f;

    if (path[0] == '\0')
        snprintf(path, sizeof(path), "/tmp/spooky-fuzz-config-%d.yaml", (int)getpid());
    f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    if (size > 0 && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    if (sp_config_load(path, &cfg, &errors) == 0) {
        sp_config_free(cfg);
    } else {
        for (size_t i = 0; i < errors.count; i++)
            if (errors.items[i].message == NULL || errors.items[i].message[0] == '\0')
                __builtin_trap();
    }
    sp_config_errors_fini(&errors);
    return 0;
}
