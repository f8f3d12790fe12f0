/* kvd: small helpers shared by every file.
 *
 * kvd is a demo server: running out of memory is treated as fatal instead
 * of being threaded through every call, which keeps the interesting code
 * (ordering, pooling, persistence) readable.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef KVD_UTIL_H
#define KVD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    fputs("kvd: out of memory\n", stderr);
    abort();
  }
  return p;
}

static inline void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) {
    fputs("kvd: out of memory\n", stderr);
    abort();
  }
  return p;
}

static inline void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (p == NULL) {
    fputs("kvd: out of memory\n", stderr);
    abort();
  }
  return p;
}

/* Wall-clock milliseconds since the epoch. Expiry times are stored as
 * absolute wall-clock instants so that they survive a restart, which is
 * what Redis does too. */
static inline int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses s[0..len) as a decimal long long with Redis' strictness
 * (string2ll): no spaces, no '+', no leading zeros, no "-0", no overflow.
 * Returns 1 on success. */
int parse_ll(const char *s, size_t len, long long *out);

#endif /* KVD_UTIL_H */
