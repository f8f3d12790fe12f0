/* kvd: one client connection (see conn.h).
 *
 * Every request becomes an entry in the connection's queue, in arrival
 * order, and replies leave strictly from the head of that queue: an entry
 * answered early (PING, an error) waits for the entries ahead of it, so
 * pipelined replies keep request order however the work completes.
 *
 * Database requests of one connection run in batches, one batch in flight
 * at a time, each batch one SQLite transaction. One at a time gives the
 * connection read-your-writes ("SET k v" then "GET k" pipelined must see
 * v, which two workers running concurrently would not guarantee); batching
 * gives a pipeline one commit instead of one per command. Different
 * connections run in parallel on different workers.
 *
 * Backpressure: a client that sends faster than its replies drain (or
 * does not read them) stops being read once MAX_PENDING requests wait or
 * MAX_UNSENT bytes of replies sit in libuv's write queue.
 *
 * SPDX-License-Identifier: MIT
 */
#include "conn.h"

#include "commands.h"
#include "proto.h"
#include "util.h"

#define MAX_BATCH 64
#define MAX_PENDING 1024
#define MAX_UNSENT (4u << 20)
#define MAX_WRITE_BUFS 256

typedef enum {
  E_WAIT, /* database request not handed to the pool yet */
  E_RUN,  /* in the batch in flight */
  E_DONE, /* reply ready */
} estate_t;

typedef struct entry {
  job_t job; /* first: a job_t* of the batch is its entry */
  struct entry *next;
  estate_t state;
  int close_after; /* QUIT or protocol error: close once this is sent */
} entry_t;

typedef struct batch {
  conn_t *c;
  size_t n;
  job_t *jobs[MAX_BATCH];
} batch_t;

/* A write in flight owns the entries whose replies it sends. */
typedef struct {
  uv_write_t req;
  conn_t *c;
  entry_t *first;
} write_t;

struct conn {
  uv_tcp_t tcp;
  server_t *srv;
  conn_t *prev, *next; /* in srv->conns */
  proto_t *proto;
  entry_t *head, *tail; /* reply order */
  entry_t *cursor;      /* first E_WAIT entry, NULL if none */
  size_t queued;        /* entries in head..tail */
  batch_t *batch;       /* in flight on the pool, at most one */
  size_t writes;        /* uv_write requests in flight */
  unsigned reading : 1;
  unsigned input_done : 1;    /* QUIT or protocol error: parse no more */
  unsigned input_blocked : 1; /* parsing paused by backpressure */
  unsigned eof : 1;           /* the client closed its side */
  unsigned closing : 1;       /* uv_close or uv_shutdown started */
  unsigned closed : 1;        /* the handle is closed */
};

static void pump(conn_t *c);

static void entry_free(entry_t *e) {
  req_free(e->job.req);
  rb_free(&e->job.reply);
  free(e);
}

static void entries_free(entry_t *e) {
  while (e != NULL) {
    entry_t *next = e->next;
    entry_free(e);
    e = next;
  }
}

/* Frees a connection whose handle is closed and whose batch, if any,
 * has come back from the pool (the worker may still use the entries
 * until then). */
static void conn_free(conn_t *c) {
  server_t *srv = c->srv;
  entries_free(c->head);
  proto_free(c->proto);
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  srv->nconns--;
  free(c);
  server_conn_gone(srv);
}

static void on_close(uv_handle_t *h) {
  conn_t *c = h->data;
  c->closed = 1;
  if (c->batch == NULL)
    conn_free(c);
}

/* Closes at once, dropping unsent replies: the client is gone or broke
 * the connection. */
static void conn_abort(conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status; /* the peer may be gone already: close either way */
  conn_t *c = req->data;
  free(req);
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

/* Closes after everything written so far is sent, with a FIN first so the
 * client reads its last replies before seeing the end. */
static void conn_finish(conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_shutdown_t *req = xmalloc(sizeof *req);
  req->data = c;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    uv_close((uv_handle_t *)&c->tcp, on_close);
  }
}

static void append(conn_t *c, entry_t *e) {
  if (c->tail)
    c->tail->next = e;
  else
    c->head = e;
  c->tail = e;
  c->queued++;
  if (e->state == E_WAIT && c->cursor == NULL)
    c->cursor = e;
}

/* Turns buffered input into queue entries, answering loop commands at
 * once, until the input runs out or backpressure says stop. */
static void parse_input(conn_t *c) {
  server_t *srv = c->srv;
  c->input_blocked = 0;
  while (!c->input_done) {
    if (c->queued >= MAX_PENDING || c->tcp.write_queue_size >= MAX_UNSENT) {
      c->input_blocked = 1;
      return;
    }
    req_t *req = NULL;
    const char *err = NULL;
    int rc = proto_next(c->proto, &req, &err);
    if (rc == 0)
      return;
    entry_t *e = xcalloc(1, sizeof *e);
    rb_init(&e->job.reply);
    e->state = E_DONE;
    if (rc < 0) {
      /* The rest of the stream cannot be framed: answer, then close. */
      rb_error(&e->job.reply, "ERR Protocol error: %s", err);
      e->close_after = 1;
      c->input_done = 1;
    } else {
      srv->commands_total++;
      e->job.req = req;
      if (command_prepare(&e->job) != 0) {
        /* the error reply is ready */
      } else if (e->job.cmd->flags & CMD_LOOP) {
        command_run_loop(&e->job, srv);
        if (e->job.cmd->flags & CMD_QUIT) {
          e->close_after = 1;
          c->input_done = 1; /* Redis ignores what follows QUIT too */
        }
      } else {
        e->state = E_WAIT;
      }
      if (e->state == E_DONE) {
        req_free(e->job.req);
        e->job.req = NULL;
      }
    }
    append(c, e);
  }
}

/* Takes the next run of waiting entries, up to MAX_BATCH; a CMD_ALONE
 * entry (DEBUG SLEEP) always forms a batch of its own, so that a sleep
 * never holds a transaction (and with it the write lock) open. */
static batch_t *take_batch(conn_t *c) {
  batch_t *b = xmalloc(sizeof *b);
  b->c = c;
  b->n = 0;
  entry_t *e = c->cursor;
  for (; e != NULL && b->n < MAX_BATCH; e = e->next) {
    if (e->state != E_WAIT)
      continue;
    int alone = (e->job.cmd->flags & CMD_ALONE) != 0;
    if (alone && b->n > 0)
      break;
    e->state = E_RUN;
    b->jobs[b->n++] = &e->job;
    if (alone) {
      e = e->next;
      break;
    }
  }
  while (e != NULL && e->state != E_WAIT)
    e = e->next;
  c->cursor = e;
  return b;
}

/* Marks a finished batch's entries answered. */
static void batch_settle(batch_t *b, int status) {
  for (size_t i = 0; i < b->n; i++) {
    entry_t *e = (entry_t *)b->jobs[i];
    if (status != 0) { /* the pool could not run it (broken or closing) */
      rb_reset(&e->job.reply);
      rb_error(&e->job.reply, "ERR cannot run command: %s",
               uv_strerror(status));
    }
    e->state = E_DONE;
    req_free(e->job.req);
    e->job.req = NULL;
  }
}

static int batch_work(void *arg, void **result) {
  batch_t *b = arg;
  commands_run_batch(b->jobs, b->n);
  *result = NULL;
  return 0;
}

static void batch_done(uvpool_future_t *f, void *data) {
  batch_t *b = data;
  conn_t *c = b->c;
  batch_settle(b, uvpool_future_status(f));
  c->batch = NULL;
  free(b);
  if (c->closed)
    conn_free(c);
  else
    pump(c);
}

/* Hands the next batch to the pool, or runs it right here with --inline
 * (as long as there is work: inline, nothing else could run meanwhile). */
static void submit(conn_t *c) {
  server_t *srv = c->srv;
  while (c->batch == NULL && c->cursor != NULL) {
    batch_t *b = take_batch(c);
    if (srv->pool == NULL) {
      commands_run_batch(b->jobs, b->n);
      batch_settle(b, 0);
      free(b);
      continue;
    }
    uvpool_future_t *f = NULL;
    int rc = uvpool_submit(srv->pool, batch_work, b, &f);
    if (rc != 0) {
      batch_settle(b, rc);
      free(b);
      continue;
    }
    c->batch = b;
    rc = uvpool_future_on_done(f, batch_done, b);
    if (rc != 0) {
      /* No callback will come, but a worker may be using the entries: the
       * only safe course is to wait for it here. Cannot happen while the
       * pool is open, short of running out of memory. */
      uvpool_future_wait(f, -1);
      c->batch = NULL;
      batch_settle(b, uvpool_future_status(f));
      free(b);
    }
    uvpool_future_unref(f); /* the pool keeps what batch_done needs */
  }
}

static void on_write(uv_write_t *req, int status) {
  write_t *w = (write_t *)req;
  conn_t *c = w->c;
  c->writes--;
  entries_free(w->first);
  free(w);
  if (status < 0)
    conn_abort(c);
  else if (!c->closing)
    pump(c); /* may resume reading, or finish */
}

/* Adds one reply to a writev, split into pieces that fit uv_buf_t's
 * unsigned length (an MGET of big values can exceed 4 GiB). Returns 0 if
 * it does not fit in the MAX_WRITE_BUFS left. */
static int add_bufs(uv_buf_t *bufs, unsigned *n, const rbuf_t *r) {
  const size_t piece = (size_t)1 << 30;
  size_t pieces = r->len / piece + (r->len % piece != 0);
  if (*n + pieces > MAX_WRITE_BUFS)
    return 0;
  for (size_t off = 0; off < r->len; off += piece) {
    size_t len = r->len - off < piece ? r->len - off : piece;
    bufs[(*n)++] = uv_buf_init(r->p + off, (unsigned)len);
  }
  return 1;
}

/* Sends the replies at the head of the queue that are ready, in one
 * writev: a pipeline's replies go out together. */
static void flush(conn_t *c) {
  while (c->head != NULL && c->head->state == E_DONE) {
    uv_buf_t bufs[MAX_WRITE_BUFS];
    unsigned n = 0;
    size_t count = 1;
    entry_t *first = c->head, *last = first;
    /* The head always fits: MAX_WRITE_BUFS pieces are 256 GiB. */
    (void)add_bufs(bufs, &n, &last->job.reply);
    while (last->next != NULL && last->next->state == E_DONE &&
           add_bufs(bufs, &n, &last->next->job.reply)) {
      last = last->next;
      count++;
    }
    c->head = last->next;
    if (c->head == NULL)
      c->tail = NULL;
    last->next = NULL;
    c->queued -= count;
    write_t *w = xmalloc(sizeof *w);
    w->c = c;
    w->first = first;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, n, on_write) != 0) {
      entries_free(first);
      free(w);
      conn_abort(c);
      return;
    }
    c->writes++;
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn_t *c = h->data;
  *buf = uv_buf_init(c->srv->readbuf, sizeof c->srv->readbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (nread > 0) {
    proto_feed(c->proto, buf->base, (size_t)nread);
  } else if (nread == UV_EOF) {
    /* Requests received before the end are still answered. */
    c->eof = 1;
  } else if (nread < 0) {
    conn_abort(c);
    return;
  }
  pump(c);
}

/* Reads while there is room for more requests and more may come. */
static void update_reading(conn_t *c) {
  int want =
      !c->input_done && !c->input_blocked && !c->eof && !c->srv->stopping;
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
      conn_abort(c);
      return;
    }
    c->reading = 1;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

/* The connection's state machine, run after anything changed: parse what
 * arrived, start database work, send ready replies, adjust reading, and
 * close once nothing more will be asked or answered. */
static void pump(conn_t *c) {
  if (c->closing)
    return;
  parse_input(c);
  submit(c);
  flush(c);
  if (c->closing)
    return;
  update_reading(c);
  if (c->closing)
    return;
  int no_more_input = c->input_done || c->eof || c->srv->stopping;
  if (no_more_input && !c->input_blocked && c->head == NULL &&
      c->batch == NULL && c->writes == 0)
    conn_finish(c);
}

void conn_accept(server_t *srv) {
  conn_t *c = xcalloc(1, sizeof *c);
  c->srv = srv;
  if (uv_tcp_init(srv->loop, &c->tcp) != 0) {
    free(c);
    return;
  }
  c->tcp.data = c;
  c->proto = proto_new(srv->opts.max_bulk);
  c->next = srv->conns;
  if (srv->conns)
    srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->tcp) != 0) {
    conn_abort(c);
    return;
  }
  srv->conns_total++;
  /* Replies are written whole, one writev per ready run: Nagle would only
   * delay them. */
  uv_tcp_nodelay(&c->tcp, 1);
  pump(c);
}

void conn_drain_all(server_t *srv) {
  /* pump() never frees a connection itself (closing goes through libuv
   * callbacks), so walking the list while pumping is safe. */
  for (conn_t *c = srv->conns; c != NULL; c = c->next)
    pump(c);
}
