/* kvd: RESP2 reply encoding into a growable byte buffer.
 *
 * A reply buffer belongs to one request; it is filled either on the loop
 * thread or on the worker that runs the request, never on both at once.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef KVD_REPLY_H
#define KVD_REPLY_H

#include <stddef.h>

typedef struct {
  char *p;
  size_t len, cap;
} rbuf_t;

void rb_init(rbuf_t *b);
void rb_free(rbuf_t *b);
/* Drops the content, keeps the memory. */
void rb_reset(rbuf_t *b);
void rb_raw(rbuf_t *b, const void *data, size_t len);
/* "+s\r\n". s must not contain CR or LF. */
void rb_status(rbuf_t *b, const char *s);
/* "-<message>\r\n". CR and LF in the message become spaces, as Redis does,
 * so that a hostile argument cannot inject protocol. */
void rb_error(rbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void rb_int(rbuf_t *b, long long v);
void rb_bulk(rbuf_t *b, const void *data, size_t len);
/* The RESP2 null bulk string "$-1\r\n". */
void rb_nil(rbuf_t *b);
void rb_array(rbuf_t *b, size_t n);

#endif /* KVD_REPLY_H */
