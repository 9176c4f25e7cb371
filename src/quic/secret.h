/* secret.h: the process-wide static secret behind stateless reset tokens (RFC 9000 §10.3.2).
 * Generated once by main before workers start, read-only afterwards, so any thread may use it.
 * Instances that must reset each other's connections will share it (DESIGN §7). */
#ifndef SP_QUIC_SECRET_H
#define SP_QUIC_SECRET_H

#include <stdint.h>

#include <ngtcp2/ngtcp2.h>

/* Generates the secret. Main thread, before any worker starts. */
void sp_quic_secret_init(void);

/* Derives the 16-byte stateless reset token for cid into token. Returns 0 or -EINVAL. */
int sp_quic_secret_reset_token(uint8_t *token, const ngtcp2_cid *cid);

#endif
