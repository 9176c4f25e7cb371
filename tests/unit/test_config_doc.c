/* test_config_doc.c: unit tests of src/config/config_doc.c. The first one keeps docs/config.md in
 * line with the key table of src/config/config_schema.c: it fails, naming the first line that
 * differs, until `spooky-config-doc docs/config.md` has rewritten the file. The others edit a
 * copy of the file in a private directory under /tmp. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config_doc.h"

#define DOC "docs/config.md" /* tests run in the source directory */

struct fixture {
    char dir[64];   /* private temp directory */
    char path[128]; /* copy of DOC in it */
    char *text;     /* owned; DOC as read at setup */
};

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text;
    long len;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    text = calloc(1, (size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    assert_int_equal(fclose(f), 0);
    return text;
}

static void write_all(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    struct fixture *f;

    if (access(DOC, R_OK) != 0) {
        print_error("run from the source directory: cannot read " DOC "\n");
        return -1;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/spooky-test-config-doc-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/config.md", f->dir);
    f->text = read_all(DOC);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    if (f == NULL)
        return 0; /* setup failed */
    (void)unlink(f->path);
    (void)rmdir(f->dir);
    free(f->text);
    free(f);
    return 0;
}

/* Writes DOC with the first `from` replaced by `to` into the fixture's copy. */
static void write_edited(struct fixture *f, const char *from, const char *to)
{
    const char *at = strstr(f->text, from);
    char *edited;

    assert_non_null(at);
    edited = calloc(1, strlen(f->text) - strlen(from) + strlen(to) + 1);
    assert_non_null(edited);
    memcpy(edited, f->text, (size_t)(at - f->text));
    strcat(edited, to);
    strcat(edited, at + strlen(from));
    write_all(f->path, edited);
    free(edited);
}

static void test_docs_config_md_has_the_key_tables_of_the_key_table(void **state)
{
    char *problem = NULL;
    int rv;

    (void)state;
    rv = sp_config_doc_sync(DOC, false, &problem);
    if (rv != 0)
        fail_msg("%s", problem);
    free(problem);
}

static void test_a_hand_edited_row_is_found_and_rewritten(void **state)
{
    struct fixture *f = *state;
    char *problem = NULL, *text;

    write_edited(f, "| `workers` | uint 0..256 |", "| `workers` | uint 0..512 |");
    assert_int_equal(sp_config_doc_sync(f->path, false, &problem), -ESTALE);
    assert_non_null(strstr(problem, "uint 0..512"));
    free(problem);
    problem = NULL;
    assert_int_equal(sp_config_doc_sync(f->path, true, &problem), 0);
    text = read_all(f->path);
    assert_string_equal(text, f->text);
    free(text);
}

/* Fails unless the copy edited so is refused, with -EINVAL and `message`. */
static void assert_edit_refused(struct fixture *f, const char *from, const char *to,
                                const char *message)
{
    char *problem = NULL;

    write_edited(f, from, to);
    assert_int_equal(sp_config_doc_sync(f->path, true, &problem), -EINVAL);
    assert_string_equal(problem, message);
    free(problem);
}

static void test_a_section_without_its_table_is_an_error(void **state)
{
    assert_edit_refused(*state, "<!-- keys: upstreams.retries -->",
                        "<!-- keys: upstreams.retry -->",
                        "no \"<!-- keys: upstreams.retries -->\" table");
}

static void test_a_table_of_no_section_is_an_error(void **state)
{
    assert_edit_refused(*state, "## Errors",
                        "<!-- keys: upstreams.colour -->\n<!-- end keys -->\n## Errors",
                        "\"<!-- keys: upstreams.colour -->\": no such section");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_config_md_has_the_key_tables_of_the_key_table),
        cmocka_unit_test(test_a_hand_edited_row_is_found_and_rewritten),
        cmocka_unit_test(test_a_section_without_its_table_is_an_error),
        cmocka_unit_test(test_a_table_of_no_section_is_an_error),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
