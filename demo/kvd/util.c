/* kvd: small helpers shared by every file.
 *
 * SPDX-License-Identifier: MIT
 */
#include "util.h"

#include <limits.h>

int parse_ll(const char *s, size_t len, long long *out) {
  if (len == 0 || len > 20)
    return 0;
  if (len == 1 && s[0] == '0') {
    *out = 0;
    return 1;
  }
  size_t i = 0;
  int neg = 0;
  if (s[0] == '-') {
    neg = 1;
    i = 1;
    if (len == 1)
      return 0;
  }
  /* The first digit must be 1-9: this rejects leading zeros and "-0", so
   * that only canonical spellings count as integers, as in Redis. */
  if (s[i] < '1' || s[i] > '9')
    return 0;
  /* Accumulate as a negative number: its range is one larger. */
  long long v = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
    int d = s[i] - '0';
    if (v < (LLONG_MIN + d) / 10)
      return 0;
    v = v * 10 - d;
  }
  if (!neg) {
    if (v == LLONG_MIN)
      return 0;
    v = -v;
  }
  *out = v;
  return 1;
}
