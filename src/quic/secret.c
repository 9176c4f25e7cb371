#include "quic/secret.h"
#include "core/util.h"

#include <errno.h>

#include <ngtcp2/ngtcp2_crypto.h>

static uint8_t static_secret[32]; /* written once by sp_quic_secret_init, then read-only */

void sp_quic_secret_init(void)
{
    sp_random_bytes(static_secret, sizeof(static_secret));
}

int sp_quic_secret_reset_token(uint8_t *token, const ngtcp2_cid *cid)
{
    if (ngtcp2_crypto_generate_stateless_reset_token(token, static_secret, sizeof(static_secret),
                                                     cid) != 0)
        return -EINVAL;
    return 0;
}
