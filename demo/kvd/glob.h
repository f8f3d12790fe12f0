/* kvd: Redis-style glob matching for KEYS.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef KVD_GLOB_H
#define KVD_GLOB_H

#include <stddef.h>

/* Nonzero if the binary string s matches pattern, with the semantics of
 * Redis' stringmatchlen(): '*' any run, '?' one byte, "[abc]", "[^abc]",
 * "[a-z]" sets, and '\' escaping the next byte. Matching is byte-wise and
 * case-sensitive. */
int glob_match(const void *pattern, size_t plen, const void *s, size_t slen);

#endif /* KVD_GLOB_H */
