/* kvd: Redis-style glob matching.
 *
 * SQLite's GLOB is close but differs from Redis (no '\' escapes, it works on
 * UTF-8 characters rather than bytes), so KEYS uses this matcher through a
 * SQL function registered in store.c.
 *
 * SPDX-License-Identifier: MIT
 */
#include "glob.h"

#include <stdint.h>

/* Matches the single pattern element at p[*i] (anything but '*') against
 * byte c and advances *i past the element. Every element consumes exactly
 * one byte of the subject, which is what makes the one-backtrack-point loop
 * in glob_match() correct. Quirks (a '-' range whose end is ']', an
 * unterminated set) follow Redis. */
static int elem_match(const unsigned char *p, size_t n, size_t *i,
                      unsigned char c) {
  size_t k = *i;
  switch (p[k]) {
  case '?':
    *i = k + 1;
    return 1;
  case '\\':
    if (k + 1 < n) {
      *i = k + 2;
      return p[k + 1] == c;
    }
    *i = k + 1;
    return c == '\\';
  case '[': {
    int neg = 0, hit = 0;
    k++;
    if (k < n && p[k] == '^') {
      neg = 1;
      k++;
    }
    while (k < n) {
      if (p[k] == ']') {
        k++;
        break;
      }
      if (p[k] == '\\' && k + 1 < n) {
        hit |= p[k + 1] == c;
        k += 2;
      } else if (k + 2 < n && p[k + 1] == '-') {
        unsigned char lo = p[k], hi = p[k + 2];
        if (lo > hi) {
          unsigned char t = lo;
          lo = hi;
          hi = t;
        }
        hit |= c >= lo && c <= hi;
        k += 3;
      } else {
        hit |= p[k] == c;
        k++;
      }
    }
    *i = k;
    return neg ? !hit : hit;
  }
  default:
    *i = k + 1;
    return p[k] == c;
  }
}

int glob_match(const void *pattern, size_t plen, const void *str, size_t slen) {
  const unsigned char *p = pattern, *s = str;
  size_t pi = 0, si = 0;
  size_t star_p = SIZE_MAX, star_s = 0; /* where to resume after a '*' */

  while (si < slen) {
    if (pi < plen && p[pi] == '*') {
      while (pi < plen && p[pi] == '*')
        pi++;
      if (pi == plen)
        return 1;
      star_p = pi;
      star_s = si;
      continue;
    }
    if (pi < plen) {
      size_t next = pi;
      if (elem_match(p, plen, &next, s[si])) {
        pi = next;
        si++;
        continue;
      }
    }
    if (star_p == SIZE_MAX)
      return 0;
    /* Let the last '*' swallow one more byte and retry from there. */
    pi = star_p;
    si = ++star_s;
  }
  while (pi < plen && p[pi] == '*')
    pi++;
  return pi == plen;
}
