/* kvd: the server: listener, pool, database lifetime, graceful stop.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef KVD_SERVER_H
#define KVD_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <uvpool.h>

#include "reply.h"
#include "store.h"

typedef struct {
  int port;            /* 0: any free port */
  const char *db_path; /* SQLite file */
  unsigned workers;    /* pool size */
  int inline_mode;     /* run SQLite on the loop thread, no pool */
  size_t max_bulk;     /* longest accepted bulk string */
  store_sync_t sync;   /* SQLite synchronous setting */
} server_opts_t;

typedef struct conn conn_t;
typedef struct server server_t;

struct server {
  uv_loop_t *loop;
  server_opts_t opts;
  uv_tcp_t listener;
  uvpool_t *pool; /* NULL with --inline */
  int port;       /* the bound port */
  conn_t *conns;  /* every open connection (conn.c links them) */
  size_t nconns;
  uint64_t conns_total, commands_total;
  int64_t started_ms;
  int stopping, listener_closed, finishing;
  int failed; /* startup failed after server_start() returned */
  void (*on_stopped)(server_t *srv);
  /* Every read lands here and is copied into the connection's parser at
   * once, so one buffer serves all connections. */
  char readbuf[64 * 1024];
};

/* Starts the server. Loop thread. With the pool, a first task opens the
 * database on a worker (thread_init) and the listener starts only once it
 * succeeded; with --inline the loop thread opens it at once. Once
 * listening on 127.0.0.1, prints "kvd listening on 127.0.0.1:PORT".
 * Returns -1 (after printing why) if nothing could be started; otherwise
 * 0, and on_stopped(srv) runs once the server stopped, after
 * server_stop() or after a failure to open the database or to listen
 * (srv->failed is then set). */
int server_start(server_t *srv, uv_loop_t *loop, const server_opts_t *opts,
                 void (*on_stopped)(server_t *srv));

/* Graceful stop: stop accepting, let every connection answer what it
 * already received and close, drain the pool, close the database; then
 * on_stopped(srv) runs and no handle of the server remains. */
void server_stop(server_t *srv);

/* Called by conn.c after it freed a connection. */
void server_conn_gone(server_t *srv);

/* INFO: appends the reply (a bulk string) for the requested sections. */
void server_info(void *srv, int nsections, const char *const *sections,
                 rbuf_t *out);

#endif /* KVD_SERVER_H */
