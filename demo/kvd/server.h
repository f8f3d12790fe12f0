/* kvd: the server of one loop: listener, pool, graceful stop. With
 * --loops N, main runs N of them, each on a loop thread of its own.
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

typedef struct conn conn_t;
typedef struct server server_t;

typedef struct {
  int port;            /* 0: any free port */
  const char *db_path; /* SQLite file */
  unsigned workers;    /* pool size */
  int inline_mode;     /* run SQLite on the loop thread, no pool */
  size_t max_bulk;     /* longest accepted bulk string */
  store_sync_t sync;   /* SQLite synchronous setting */
  unsigned loops;      /* how many loops serve the port */
  unsigned loop_index; /* which of them this is */
  int reuseport;       /* listen with SO_REUSEPORT beside the others */
  uvpool_t *share;     /* NULL: a pool of its own (workers, thread_init);
                          else the first loop's pool, whose workers this
                          loop's pool shares (uvpool_options_t.share) */
  /* Called on the loop thread once the listener listens. */
  void (*on_listening)(server_t *srv);
} server_opts_t;

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

/* Starts the server. Loop thread; store_configure() was called. With the
 * pool, a first task opens the database on a worker (thread_init) and the
 * listener starts only once it succeeded; with --inline the loop thread
 * opens a connection of its own at once. Once listening on 127.0.0.1,
 * calls opts->on_listening(srv).
 * Returns -1 (after printing why) if nothing could be started; otherwise
 * 0, and on_stopped(srv) runs once the server stopped, after
 * server_stop() or after a failure to open the database or to listen
 * (srv->failed is then set). */
int server_start(server_t *srv, uv_loop_t *loop, const server_opts_t *opts,
                 void (*on_stopped)(server_t *srv));

/* Graceful stop: stop accepting, let every connection answer what it
 * already received and close, drain the pool (or close the loop's own
 * connection, --inline); then on_stopped(srv) runs and no handle of the
 * server remains. The last pool of a group to close joins the workers,
 * which close their connections (thread_exit) first. */
void server_stop(server_t *srv);

/* Called by conn.c after it freed a connection. */
void server_conn_gone(server_t *srv);

/* INFO: appends the reply (a bulk string) for the requested sections. */
void server_info(void *srv, int nsections, const char *const *sections,
                 rbuf_t *out);

#endif /* KVD_SERVER_H */
