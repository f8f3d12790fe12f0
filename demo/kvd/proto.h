/* kvd: request parsing.
 *
 * Requests in the RESP protocol (arrays of bulk strings, what every client
 * library sends) are parsed by hiredis' reader with kvd's own object
 * functions, which build the argument vector directly and reject anything
 * that is not a flat array of bulk strings. Inline commands ("PING\r\n", as
 * typed into telnet) are split here, with Redis' quoting rules.
 *
 * Limits follow Redis: a bulk string longer than max_bulk, a negative bulk
 * length, or a header or inline line longer than 64 KiB is a protocol
 * error, detected as soon as the offending header arrives rather than after
 * buffering the payload.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef KVD_PROTO_H
#define KVD_PROTO_H

#include <stddef.h>

/* One request: argc arguments, each NUL-terminated for convenience (the
 * terminator is not counted in argl, and arguments may contain NULs). */
typedef struct {
  int argc, cap;
  char **argv;
  size_t *argl;
} req_t;

typedef struct proto proto_t;

proto_t *proto_new(size_t max_bulk);
void proto_free(proto_t *p);
/* Appends received bytes. */
void proto_feed(proto_t *p, const char *data, size_t len);
/* Returns 1 and a request in *out (free it with req_free), 0 if more input
 * is needed, or -1 on a protocol error, with *err describing it ("invalid
 * bulk length", ...). After an error the parser must not be used again. */
int proto_next(proto_t *p, req_t **out, const char **err);
void req_free(req_t *r);

#endif /* KVD_PROTO_H */
