/* test_lb_rendezvous.c: unit tests of src/lb/rendezvous.c: keys stay on their backend across
 * balancers and backend order, shares follow weights, and removing one of N backends moves only
 * that backend's keys (about 1/N of them). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "lb/lb.h"
#include "seeded.h"

static const struct sp_lb_params seeded = {.random_u64 = seeded_u64, .random_ctx = &seeded_state};

#define NKEYS 100000
#define MAXB 10

static const char *const ids10[MAXB] = {"web-a", "web-b", "web-c", "web-d", "web-e",
                                        "web-f", "web-g", "web-h", "web-i", "web-j"};

/* Picks for key number k ("user-<k>") and returns the backend's id. */
static const char *pick_id(struct sp_lb *lb, const struct sp_lb_backend *b, const char *const *ids,
                           size_t n, unsigned k)
{
    char key[32];
    int len = snprintf(key, sizeof(key), "user-%u", k);
    size_t idx;

    assert_int_equal(sp_lb_pick_key(lb, b, n, (const uint8_t *)key, (size_t)len, 0, &idx), 0);
    return ids[idx];
}

static void set_all(struct sp_lb_backend *b, size_t n, unsigned weight)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (struct sp_lb_backend){weight, true, 0};
}

static void test_rendezvous_maps_a_key_to_the_same_backend_whatever_the_backend_order(void **state)
{
    static const char *const reversed[3] = {"web-c", "web-b", "web-a"};
    struct sp_lb_backend b[3];
    struct sp_lb *lb1, *lb2;

    (void)state;
    set_all(b, 3, 1);
    assert_int_equal(sp_lb_new_by_name("rendezvous", &seeded, ids10, 3, &lb1), 0);
    assert_int_equal(sp_lb_new_by_name("rendezvous", &seeded, reversed, 3, &lb2), 0);
    for (unsigned k = 0; k < 1000; k++) {
        const char *first = pick_id(lb1, b, ids10, 3, k);

        assert_string_equal(pick_id(lb1, b, ids10, 3, k), first); /* stable */
        assert_string_equal(pick_id(lb2, b, reversed, 3, k), first);
    }
    sp_lb_free(lb2);
    sp_lb_free(lb1);
}

static void test_rendezvous_distributes_keys_5_3_2_within_two_percent(void **state)
{
    const unsigned tolerance = NKEYS / 50;
    const unsigned expected[3] = {NKEYS / 2, NKEYS * 3 / 10, NKEYS / 5};
    struct sp_lb_backend b[3] = {{5, true, 0}, {3, true, 0}, {2, true, 0}};
    unsigned counts[3] = {0};
    struct sp_lb *lb;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("rendezvous", &seeded, ids10, 3, &lb), 0);
    for (unsigned k = 0; k < NKEYS; k++) {
        const char *id = pick_id(lb, b, ids10, 3, k);

        counts[id[4] - 'a']++;
    }
    for (size_t i = 0; i < 3; i++)
        assert_in_range(counts[i], expected[i] - tolerance, expected[i] + tolerance);
    sp_lb_free(lb);
}

/* Removes backend `gone` of 10 (weights w[]) by building a balancer over the other nine, and
 * checks that exactly the keys it held moved, and that they were about its share. */
static void check_removal_moves_only_its_keys(const unsigned *w, size_t gone, unsigned share_pct)
{
    const char *rest[MAXB];
    struct sp_lb_backend b[MAXB], b9[MAXB];
    struct sp_lb *lb, *lb9;
    unsigned moved = 0;

    for (size_t i = 0, j = 0; i < MAXB; i++) {
        b[i] = (struct sp_lb_backend){w[i], true, 0};
        if (i != gone) {
            rest[j] = ids10[i];
            b9[j++] = b[i];
        }
    }
    assert_int_equal(sp_lb_new_by_name("rendezvous", &seeded, ids10, MAXB, &lb), 0);
    assert_int_equal(sp_lb_new_by_name("rendezvous", &seeded, rest, MAXB - 1, &lb9), 0);
    for (unsigned k = 0; k < NKEYS; k++) {
        const char *before = pick_id(lb, b, ids10, MAXB, k);
        const char *after = pick_id(lb9, b9, rest, MAXB - 1, k);

        if (strcmp(before, after) != 0) {
            assert_string_equal(before, ids10[gone]); /* nobody else's key moves */
            moved++;
        }
    }
    assert_in_range(moved, NKEYS * (share_pct - 2) / 100, NKEYS * (share_pct + 2) / 100);
    sp_lb_free(lb9);
    sp_lb_free(lb);
}

static void test_rendezvous_removing_one_of_ten_moves_a_tenth_of_keys_all_its_own(void **state)
{
    static const unsigned equal[MAXB] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

    (void)state;
    check_removal_moves_only_its_keys(equal, 3, 10);
}

static void test_rendezvous_with_weights_removing_one_moves_only_its_weighted_share(void **state)
{
    /* total 20: backend 0 holds 5/20 = 25% of keys */
    static const unsigned weights[MAXB] = {5, 1, 1, 1, 1, 3, 1, 2, 4, 1};

    (void)state;
    check_removal_moves_only_its_keys(weights, 0, 25);
}

static void test_rendezvous_an_ineligible_backend_moves_only_its_keys_and_back(void **state)
{
    struct sp_lb_backend b[MAXB];
    const char *before[1000];
    struct sp_lb *lb;

    (void)state;
    set_all(b, MAXB, 2);
    assert_int_equal(sp_lb_new_by_name("rendezvous", &seeded, ids10, MAXB, &lb), 0);
    for (unsigned k = 0; k < 1000; k++)
        before[k] = pick_id(lb, b, ids10, MAXB, k);
    b[7].eligible = false;
    for (unsigned k = 0; k < 1000; k++) {
        const char *now = pick_id(lb, b, ids10, MAXB, k);

        assert_true(before[k] == ids10[7] ? now != ids10[7] : now == before[k]);
    }
    b[7].eligible = true;
    for (unsigned k = 0; k < 1000; k++)
        assert_ptr_equal(pick_id(lb, b, ids10, MAXB, k), before[k]);
    sp_lb_free(lb);
}

static void test_rendezvous_without_a_key_picks_by_weight(void **state)
{
    struct sp_lb_backend b[2] = {{3, true, 0}, {1, false, 0}};
    struct sp_lb *lb;
    size_t idx;

    (void)state;
    assert_int_equal(sp_lb_new_by_name("rendezvous", &seeded, NULL, 2, &lb), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(sp_lb_pick(lb, b, 2, 0, &idx), 0);
        assert_int_equal(idx, 0);
    }
    sp_lb_free(lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rendezvous_maps_a_key_to_the_same_backend_whatever_the_backend_order),
        cmocka_unit_test(test_rendezvous_distributes_keys_5_3_2_within_two_percent),
        cmocka_unit_test(test_rendezvous_removing_one_of_ten_moves_a_tenth_of_keys_all_its_own),
        cmocka_unit_test(test_rendezvous_with_weights_removing_one_moves_only_its_weighted_share),
        cmocka_unit_test(test_rendezvous_an_ineligible_backend_moves_only_its_keys_and_back),
        cmocka_unit_test(test_rendezvous_without_a_key_picks_by_weight),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
