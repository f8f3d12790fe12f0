/* kvd: one client connection: reading, request queue, batching to the
 * pool, replies in request order.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef KVD_CONN_H
#define KVD_CONN_H

#include "server.h"

/* Accepts a pending connection on srv's listener. Loop thread. */
void conn_accept(server_t *srv);

/* Graceful stop of every connection: read nothing more, answer every
 * request already received, then close. srv->stopping must be set. */
void conn_drain_all(server_t *srv);

#endif /* KVD_CONN_H */
