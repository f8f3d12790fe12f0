/* kvd: RESP2 reply encoding.
 *
 * SPDX-License-Identifier: MIT
 */
#include "reply.h"

#include <stdarg.h>
#include <stdio.h>

#include "util.h"

void rb_init(rbuf_t *b) {
  b->p = NULL;
  b->len = 0;
  b->cap = 0;
}

void rb_free(rbuf_t *b) {
  free(b->p);
  rb_init(b);
}

void rb_reset(rbuf_t *b) { b->len = 0; }

/* Makes room for n more bytes. Growth is geometric so that building a large
 * MGET or KEYS reply stays linear. */
static void rb_reserve(rbuf_t *b, size_t n) {
  if (b->cap - b->len >= n)
    return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap - b->len < n)
    cap *= 2;
  b->p = xrealloc(b->p, cap);
  b->cap = cap;
}

void rb_raw(rbuf_t *b, const void *data, size_t len) {
  if (len == 0)
    return;
  rb_reserve(b, len);
  memcpy(b->p + b->len, data, len);
  b->len += len;
}

void rb_status(rbuf_t *b, const char *s) {
  rb_raw(b, "+", 1);
  rb_raw(b, s, strlen(s));
  rb_raw(b, "\r\n", 2);
}

void rb_error(rbuf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  rb_reserve(b, (size_t)n + 4);
  char *start = b->p + b->len;
  start[0] = '-';
  va_start(ap, fmt);
  vsnprintf(start + 1, (size_t)n + 1, fmt, ap);
  va_end(ap);
  for (int i = 1; i <= n; i++)
    if (start[i] == '\r' || start[i] == '\n')
      start[i] = ' ';
  b->len += (size_t)n + 1;
  rb_raw(b, "\r\n", 2);
}

/* Writes "<prefix><v>\r\n". */
static void rb_prefixed(rbuf_t *b, char prefix, long long v) {
  char tmp[32];
  int n = snprintf(tmp, sizeof tmp, "%c%lld\r\n", prefix, v);
  rb_raw(b, tmp, (size_t)n);
}

void rb_int(rbuf_t *b, long long v) { rb_prefixed(b, ':', v); }

void rb_bulk(rbuf_t *b, const void *data, size_t len) {
  rb_reserve(b, len + 32);
  rb_prefixed(b, '$', (long long)len);
  rb_raw(b, data, len);
  rb_raw(b, "\r\n", 2);
}

void rb_nil(rbuf_t *b) { rb_raw(b, "$-1\r\n", 5); }

void rb_array(rbuf_t *b, size_t n) { rb_prefixed(b, '*', (long long)n); }
