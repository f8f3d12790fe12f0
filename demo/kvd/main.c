/* kvd: a Redis-protocol key-value server on one libuv loop, persisting to
 * SQLite through a uvpool executor.
 *
 * The loop thread parses requests, answers PING/ECHO/INFO/QUIT itself and
 * writes replies; every SQLite call runs on a pool worker with its own
 * connection. --inline runs the SQLite calls on the loop thread instead,
 * which is the comparison that shows what the pool buys: with it, a slow
 * command (DEBUG SLEEP, a big KEYS) does not stall every other client.
 *
 * SPDX-License-Identifier: MIT
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

static const char usage[] =
    "usage: kvd [options]\n"
    "  --port N         TCP port on 127.0.0.1 (default 6379; 0: any free "
    "port)\n"
    "  --db PATH        SQLite database (default kvd.sqlite3)\n"
    "  --workers N      pool worker threads (default 4)\n"
    "  --inline         run SQLite calls on the loop thread, no pool\n"
    "  --max-bulk BYTES longest bulk string accepted (default 536870912)\n"
    "  --sync MODE      SQLite synchronous: normal (default) or full\n"
    "Prints \"kvd listening on 127.0.0.1:PORT\" when ready; SIGINT or\n"
    "SIGTERM stop it gracefully (a second one exits at once).\n";

typedef struct {
  server_t srv;
  uv_signal_t sigint, sigterm;
} app_t;

/* Parses a decimal unsigned number within [min, max]. */
static int parse_num(const char *s, unsigned long long min,
                     unsigned long long max, unsigned long long *out) {
  char *end;
  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end != '\0' || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv, server_opts_t *o) {
  unsigned long long v;
  o->port = 6379;
  o->db_path = "kvd.sqlite3";
  o->workers = 4;
  o->inline_mode = 0;
  o->max_bulk = 512ull * 1024 * 1024;
  o->sync = STORE_SYNC_NORMAL;
  for (int i = 1; i < argc;) {
    const char *a = argv[i++];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      exit(0);
    }
    if (strcmp(a, "--inline") == 0) {
      o->inline_mode = 1;
      continue;
    }
    /* Every other option takes a value. */
    const char *val = i < argc ? argv[i++] : NULL;
    if (strcmp(a, "--port") == 0 && parse_num(val, 0, 65535, &v) == 0) {
      o->port = (int)v;
    } else if (strcmp(a, "--db") == 0 && val != NULL && *val != '\0') {
      o->db_path = val;
    } else if (strcmp(a, "--workers") == 0 &&
               parse_num(val, 1, 1024, &v) == 0) {
      o->workers = (unsigned)v;
    } else if (strcmp(a, "--max-bulk") == 0 &&
               parse_num(val, 1, 512ull * 1024 * 1024, &v) == 0) {
      o->max_bulk = (size_t)v;
    } else if (strcmp(a, "--sync") == 0 && val != NULL &&
               (strcmp(val, "normal") == 0 || strcmp(val, "full") == 0)) {
      o->sync = strcmp(val, "full") == 0 ? STORE_SYNC_FULL : STORE_SYNC_NORMAL;
    } else {
      fprintf(stderr, "kvd: bad option or value: %s%s%s\n%s", a, val ? " " : "",
              val ? val : "", usage);
      return -1;
    }
  }
  return 0;
}

static void on_stopped(server_t *srv) {
  app_t *app = (app_t *)srv; /* srv is the first member */
  uv_close((uv_handle_t *)&app->sigint, NULL);
  uv_close((uv_handle_t *)&app->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  app_t *app = h->data;
  if (app->srv.stopping) {
    /* The operator insists: requests still in flight are abandoned. */
    fprintf(stderr, "kvd: signal %d again, exiting now\n", signum);
    _exit(1);
  }
  fprintf(stderr, "kvd: signal %d, stopping\n", signum);
  server_stop(&app->srv);
}

int main(int argc, char **argv) {
  server_opts_t opts;
  if (parse_args(argc, argv, &opts) != 0)
    return 2;

  /* A client that vanishes must cost an EPIPE, not the process. */
  signal(SIGPIPE, SIG_IGN);

  static app_t app; /* large (read buffer): keep it off the stack */
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) {
    fputs("kvd: cannot create the event loop\n", stderr);
    return 1;
  }
  uv_signal_init(&loop, &app.sigint);
  uv_signal_init(&loop, &app.sigterm);
  app.sigint.data = app.sigterm.data = &app;
  /* Before starting: scripts may signal as soon as the ready line shows. */
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);
  if (server_start(&app.srv, &loop, &opts, on_stopped) != 0) {
    on_stopped(&app.srv); /* nothing else was opened */
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  int failed = app.srv.failed;
  if (uv_loop_close(&loop) != 0) {
    fputs("kvd: handles left open at exit\n", stderr);
    failed = 1;
  }
  if (!failed)
    fputs("kvd: stopped\n", stderr);
  return failed ? 1 : 0;
}
