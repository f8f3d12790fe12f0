/* kvd: the server (see server.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "util.h"

static void on_connection(uv_stream_t *listener, int status) {
  server_t *srv = listener->data;
  if (status < 0) {
    fprintf(stderr, "kvd: accept: %s\n", uv_strerror(status));
    return;
  }
  if (!srv->stopping)
    conn_accept(srv);
}

/* Binds with SO_REUSEPORT, so that every loop listens on the same port
 * and the kernel spreads the connections over them (libuv 1.44 has no
 * flag for it). */
static int bind_reuseport(server_t *srv, const struct sockaddr_in *addr) {
  int one = 1, rc;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      bind(fd, (const struct sockaddr *)addr, sizeof *addr) != 0) {
    rc = uv_translate_sys_error(errno);
    close(fd);
    return rc;
  }
  rc = uv_tcp_open(&srv->listener, fd);
  if (rc != 0)
    close(fd);
  return rc;
}

/* Binds, listens and says so (opts.on_listening). */
static int start_listening(server_t *srv) {
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = sizeof bound;
  int rc;
  uv_ip4_addr("127.0.0.1", srv->opts.port, &addr);
  rc = srv->opts.reuseport
           ? bind_reuseport(srv, &addr)
           : uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
  if (rc == 0)
    rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len);
  if (rc != 0) {
    fprintf(stderr, "kvd: listen on 127.0.0.1:%d: %s\n", srv->opts.port,
            uv_strerror(rc));
    return -1;
  }
  srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  if (srv->opts.on_listening != NULL)
    srv->opts.on_listening(srv);
  return 0;
}

/* Runs on the first worker, after its thread_init: if that could not open
 * the database, the pool is broken and this task fails with its code
 * without running. */
static int probe_work(void *arg, void **result) {
  (void)arg;
  *result = NULL;
  return store_current() != NULL ? 0 : UV_EIO;
}

static void probe_done(uvpool_future_t *f, void *data) {
  server_t *srv = data;
  int status = uvpool_future_status(f);
  if (srv->stopping) /* a signal came first */
    return;
  if (status != 0)
    fprintf(stderr, "kvd: cannot open the database: %s\n", uv_strerror(status));
  if (status != 0 || start_listening(srv) != 0) {
    srv->failed = 1;
    server_stop(srv);
  }
}

int server_start(server_t *srv, uv_loop_t *loop, const server_opts_t *opts,
                 void (*on_stopped)(server_t *srv)) {
  memset(srv, 0, sizeof *srv);
  srv->loop = loop;
  srv->opts = *opts;
  srv->on_stopped = on_stopped;
  srv->started_ms = now_ms();

  if (opts->inline_mode) {
    /* The loop thread plays the part of the only worker. */
    if (store_thread_init(NULL) != 0)
      return -1;
  } else {
    uvpool_options_t po;
    uvpool_options_init(&po);
    if (opts->share != NULL) {
      po.share = opts->share; /* the workers and their options are its */
    } else {
      po.max_workers = opts->workers;
      po.name = "kvd";
      po.thread_init = store_thread_init;
      po.thread_exit = store_thread_exit;
    }
    int rc = uvpool_new(loop, &po, &srv->pool);
    if (rc != 0) {
      fprintf(stderr, "kvd: uvpool_new: %s\n", uv_strerror(rc));
      return -1;
    }
  }
  uv_tcp_init(loop, &srv->listener);
  srv->listener.data = srv;

  if (srv->pool == NULL) {
    if (start_listening(srv) != 0) {
      srv->failed = 1;
      server_stop(srv); /* closes what is open; on_stopped follows */
    }
    return 0;
  }
  uvpool_future_t *f = NULL;
  int rc = uvpool_submit(srv->pool, probe_work, NULL, &f);
  if (rc == 0)
    rc = uvpool_future_on_done(f, probe_done, srv);
  uvpool_future_unref(f);
  if (rc != 0) {
    fprintf(stderr, "kvd: cannot start the pool: %s\n", uv_strerror(rc));
    srv->failed = 1;
    server_stop(srv);
  }
  return 0;
}

static void pool_closed(uvpool_t *pool, void *data) {
  (void)pool;
  server_t *srv = data;
  srv->pool = NULL;
  if (srv->on_stopped)
    srv->on_stopped(srv);
}

/* Last stage of a stop, once no connection is left: every request was
 * answered, so closing the pool only waits for idle workers to exit and
 * close their connections (thread_exit). */
static void maybe_finish_stop(server_t *srv) {
  if (!srv->stopping || !srv->listener_closed || srv->nconns > 0 ||
      srv->finishing)
    return;
  srv->finishing = 1;
  if (srv->pool != NULL) {
    int rc = uvpool_close(srv->pool, 0, pool_closed, srv);
    if (rc == 0)
      return;
    /* Cannot happen on the loop thread; if it did, workers might still
     * use the store, so leave it to process exit. */
    fprintf(stderr, "kvd: uvpool_close: %s\n", uv_strerror(rc));
    srv->failed = 1;
  } else {
    store_thread_exit(NULL); /* --inline: the loop's connection */
  }
  if (srv->on_stopped)
    srv->on_stopped(srv);
}

static void on_listener_closed(uv_handle_t *h) {
  server_t *srv = h->data;
  srv->listener_closed = 1;
  maybe_finish_stop(srv);
}

void server_stop(server_t *srv) {
  if (srv->stopping)
    return;
  srv->stopping = 1;
  uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
  conn_drain_all(srv);
}

void server_conn_gone(server_t *srv) { maybe_finish_stop(srv); }

/* Appends "# Title\r\n" if the section is wanted. */
static int section(rbuf_t *b, int n, const char *const *names,
                   const char *title) {
  int want = n == 0;
  for (int i = 0; i < n && !want; i++)
    want = strcasecmp(names[i], title) == 0 ||
           strcasecmp(names[i], "all") == 0 ||
           strcasecmp(names[i], "everything") == 0 ||
           strcasecmp(names[i], "default") == 0;
  if (want) {
    if (b->len > 0)
      rb_raw(b, "\r\n", 2);
    rb_raw(b, "# ", 2);
    rb_raw(b, title, strlen(title));
    rb_raw(b, "\r\n", 2);
  }
  return want;
}

static void field(rbuf_t *b, const char *name, unsigned long long v) {
  char line[96];
  int n = snprintf(line, sizeof line, "%s:%llu\r\n", name, v);
  rb_raw(b, line, (size_t)n);
}

static void field_s(rbuf_t *b, const char *name, const char *v) {
  rb_raw(b, name, strlen(name));
  rb_raw(b, ":", 1);
  rb_raw(b, v, strlen(v));
  rb_raw(b, "\r\n", 2);
}

void server_info(void *ctx, int n, const char *const *names, rbuf_t *out) {
  server_t *srv = ctx;
  rbuf_t b;
  rb_init(&b);
  if (section(&b, n, names, "Server")) {
    field_s(&b, "kvd_version", "0.1.0");
    field_s(&b, "uvpool_version", uvpool_version_string());
    field(&b, "process_id", (unsigned long long)getpid());
    field(&b, "tcp_port", (unsigned long long)srv->port);
    field(&b, "kvd_loops", srv->opts.loops);
    field(&b, "kvd_loop", srv->opts.loop_index);
    field(&b, "uptime_in_seconds",
          (unsigned long long)(now_ms() - srv->started_ms) / 1000);
    field_s(&b, "db_path", srv->opts.db_path);
    field_s(&b, "sqlite_synchronous",
            srv->opts.sync == STORE_SYNC_FULL ? "full" : "normal");
  }
  if (section(&b, n, names, "Clients"))
    field(&b, "connected_clients", srv->nconns);
  if (section(&b, n, names, "Stats")) {
    field(&b, "total_connections_received", srv->conns_total);
    field(&b, "total_commands_processed", srv->commands_total);
  }
  if (section(&b, n, names, "uvpool")) {
    uvpool_stats_t st;
    field_s(&b, "uvpool_mode", srv->pool ? "pool" : "inline");
    if (srv->pool != NULL && uvpool_stats(srv->pool, &st) == 0) {
      field(&b, "uvpool_max_workers", srv->opts.workers);
      field(&b, "uvpool_workers", st.workers);
      field(&b, "uvpool_idle_workers", st.idle_workers);
      field(&b, "uvpool_peak_workers", st.peak_workers);
      field(&b, "uvpool_submitted", st.submitted);
      field(&b, "uvpool_completed", st.completed);
      field(&b, "uvpool_failed", st.failed);
      field(&b, "uvpool_cancelled", st.cancelled);
      field(&b, "uvpool_queued", st.queued);
      field(&b, "uvpool_running", st.running);
    }
  }
  rb_bulk(out, b.p ? b.p : "", b.len);
  rb_free(&b);
}
