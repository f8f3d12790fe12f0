/* kvd: the command table and what each command does (see commands.h).
 *
 * Replies and error texts follow Redis 7 so that clients and tests written
 * against Redis see the same bytes.
 *
 * SPDX-License-Identifier: MIT
 */
#include "commands.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <strings.h>

#include "glob.h"
#include "server.h"
#include "util.h"

#define ERR_SYNTAX "ERR syntax error"
#define ERR_NOT_INT "ERR value is not an integer or out of range"

/* Shorthands for the request being run. */
#define ARGC(j) ((j)->req->argc)
#define ARG(j, i) ((j)->req->argv[i])
#define ARGL(j, i) ((j)->req->argl[i])

static int arg_is(const job_t *j, int i, const char *word) {
  return strcasecmp(ARG(j, i), word) == 0 && strlen(word) == ARGL(j, i);
}

static int arg_ll(const job_t *j, int i, long long *v) {
  return parse_ll(ARG(j, i), ARGL(j, i), v);
}

static void reply_arity(job_t *j) {
  rb_error(&j->reply, "ERR wrong number of arguments for '%s' command",
           j->cmd->name);
}

/* ---- commands answered on the loop thread ---- */

static void cmd_ping(job_t *j, void *ctx) {
  (void)ctx;
  if (ARGC(j) > 2)
    reply_arity(j);
  else if (ARGC(j) == 2)
    rb_bulk(&j->reply, ARG(j, 1), ARGL(j, 1));
  else
    rb_status(&j->reply, "PONG");
}

static void cmd_echo(job_t *j, void *ctx) {
  (void)ctx;
  rb_bulk(&j->reply, ARG(j, 1), ARGL(j, 1));
}

static void cmd_quit(job_t *j, void *ctx) {
  (void)ctx;
  rb_status(&j->reply, "OK");
}

/* CONFIG GET pattern: the few parameters clients probe for. redis-benchmark
 * asks for "save" and "appendonly" and warns if it gets an error. */
static void cmd_config(job_t *j, void *ctx) {
  static const char *const params[][2] = {
      {"save", ""}, {"appendonly", "no"}, {"databases", "1"}};
  enum { NPARAMS = sizeof params / sizeof params[0] };
  (void)ctx;
  if (!(ARGC(j) == 3 && arg_is(j, 1, "get"))) {
    rb_error(&j->reply,
             "ERR unknown subcommand or wrong number of arguments for "
             "'%.128s'. Try CONFIG HELP.",
             ARG(j, 1));
    return;
  }
  int match[NPARAMS] = {0}, n = 0;
  for (int i = 0; i < NPARAMS; i++) {
    match[i] =
        glob_match(ARG(j, 2), ARGL(j, 2), params[i][0], strlen(params[i][0]));
    n += match[i];
  }
  rb_array(&j->reply, (size_t)n * 2);
  for (int i = 0; i < NPARAMS; i++) {
    if (!match[i])
      continue;
    rb_bulk(&j->reply, params[i][0], strlen(params[i][0]));
    rb_bulk(&j->reply, params[i][1], strlen(params[i][1]));
  }
}

static void cmd_info(job_t *j, void *ctx) {
  server_info(ctx, ARGC(j) - 1, (const char *const *)j->req->argv + 1,
              &j->reply);
}

/* ---- database commands ---- */

static int cmd_get(job_t *j, store_t *s, int64_t now) {
  const void *v;
  size_t vl;
  int rc = store_get(s, ARG(j, 1), ARGL(j, 1), now, &v, &vl, NULL);
  if (rc < 0)
    return -1;
  if (rc)
    rb_bulk(&j->reply, v, vl);
  else
    rb_nil(&j->reply);
  return 0;
}

enum {
  SET_NX = 1,
  SET_XX = 2,
  SET_GET = 4,
  SET_KEEPTTL = 8,
  SET_EX = 16,
  SET_PX = 32,
  SET_EXAT = 64,
  SET_PXAT = 128,
};
#define SET_ANY_EXPIRE (SET_EX | SET_PX | SET_EXAT | SET_PXAT)

/* Parses SET's options like Redis' parseExtendedStringArgumentsOrReply()
 * and then its expire time like getExpireMillisecondsOrReply(): option
 * conflicts are syntax errors, a bad or non-positive time gets its own
 * error. On success *exp is the absolute expiry (0: none). */
static int set_options(job_t *j, int64_t now, unsigned *flags, int64_t *exp) {
  int expire_arg = 0;
  *flags = 0;
  *exp = 0;
  for (int i = 3; i < ARGC(j); i++) {
    int has_next = i + 1 < ARGC(j);
    unsigned f = *flags;
    if (arg_is(j, i, "nx") && !(f & SET_XX)) {
      *flags |= SET_NX;
    } else if (arg_is(j, i, "xx") && !(f & SET_NX)) {
      *flags |= SET_XX;
    } else if (arg_is(j, i, "get")) {
      *flags |= SET_GET;
    } else if (arg_is(j, i, "keepttl") && !(f & SET_ANY_EXPIRE)) {
      *flags |= SET_KEEPTTL;
    } else if (has_next && !(f & (SET_ANY_EXPIRE | SET_KEEPTTL)) &&
               (arg_is(j, i, "ex") || arg_is(j, i, "px") ||
                arg_is(j, i, "exat") || arg_is(j, i, "pxat"))) {
      *flags |= arg_is(j, i, "ex")     ? SET_EX
                : arg_is(j, i, "px")   ? SET_PX
                : arg_is(j, i, "exat") ? SET_EXAT
                                       : SET_PXAT;
      expire_arg = ++i;
    } else {
      rb_error(&j->reply, ERR_SYNTAX);
      return -1;
    }
  }
  if (expire_arg == 0)
    return 0;
  long long t;
  if (!arg_ll(j, expire_arg, &t)) {
    rb_error(&j->reply, ERR_NOT_INT);
    return -1;
  }
  int seconds = (*flags & (SET_EX | SET_EXAT)) != 0;
  int relative = (*flags & (SET_EX | SET_PX)) != 0;
  if (t <= 0 || (seconds && t > LLONG_MAX / 1000))
    goto invalid;
  if (seconds)
    t *= 1000;
  if (relative) {
    if (t > LLONG_MAX - now)
      goto invalid;
    t += now;
  }
  *exp = t;
  return 0;
invalid:
  rb_error(&j->reply, "ERR invalid expire time in 'set' command");
  return -1;
}

static int cmd_set(job_t *j, store_t *s, int64_t now) {
  unsigned flags;
  int64_t exp;
  if (set_options(j, now, &flags, &exp) != 0)
    return 0;
  int found = 0;
  int64_t old_exp = 0;
  if (flags & (SET_NX | SET_XX | SET_GET | SET_KEEPTTL)) {
    const void *v;
    size_t vl;
    found = store_get(s, ARG(j, 1), ARGL(j, 1), now,
                      flags & SET_GET ? &v : NULL, &vl, &old_exp);
    if (found < 0)
      return -1;
    /* SET ... GET answers with the old value whatever happens next. The
     * value must be copied out before the next store call reuses it. */
    if (flags & SET_GET) {
      if (found)
        rb_bulk(&j->reply, v, vl);
      else
        rb_nil(&j->reply);
    }
    if (((flags & SET_NX) && found) || ((flags & SET_XX) && !found)) {
      if (!(flags & SET_GET))
        rb_nil(&j->reply);
      return 0;
    }
    if ((flags & SET_KEEPTTL) && found)
      exp = old_exp;
  }
  if (store_put(s, ARG(j, 1), ARGL(j, 1), ARG(j, 2), ARGL(j, 2), exp) != 0)
    return -1;
  if (!(flags & SET_GET))
    rb_status(&j->reply, "OK");
  return 0;
}

static int cmd_del(job_t *j, store_t *s, int64_t now) {
  long long n = 0;
  for (int i = 1; i < ARGC(j); i++) {
    int rc = store_del(s, ARG(j, i), ARGL(j, i), now);
    if (rc < 0)
      return -1;
    n += rc;
  }
  rb_int(&j->reply, n);
  return 0;
}

static int cmd_exists(job_t *j, store_t *s, int64_t now) {
  long long n = 0; /* a key named twice counts twice, as in Redis */
  for (int i = 1; i < ARGC(j); i++) {
    int rc = store_get(s, ARG(j, i), ARGL(j, i), now, NULL, NULL, NULL);
    if (rc < 0)
      return -1;
    n += rc;
  }
  rb_int(&j->reply, n);
  return 0;
}

/* INCR and INCRBY: the value must be a canonical decimal integer; the TTL
 * is kept, as Redis does. */
static int incr_by(job_t *j, store_t *s, int64_t now, long long by) {
  const void *v;
  size_t vl;
  int64_t exp = 0;
  long long cur = 0;
  int found = store_get(s, ARG(j, 1), ARGL(j, 1), now, &v, &vl, &exp);
  if (found < 0)
    return -1;
  if (found && !parse_ll(v, vl, &cur)) {
    rb_error(&j->reply, ERR_NOT_INT);
    return 0;
  }
  if ((by < 0 && cur < 0 && by < LLONG_MIN - cur) ||
      (by > 0 && cur > 0 && by > LLONG_MAX - cur)) {
    rb_error(&j->reply, "ERR increment or decrement would overflow");
    return 0;
  }
  cur += by;
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%lld", cur);
  if (store_put(s, ARG(j, 1), ARGL(j, 1), buf, (size_t)n, exp) != 0)
    return -1;
  rb_int(&j->reply, cur);
  return 0;
}

static int cmd_incr(job_t *j, store_t *s, int64_t now) {
  return incr_by(j, s, now, 1);
}

static int cmd_incrby(job_t *j, store_t *s, int64_t now) {
  long long by;
  if (!arg_ll(j, 2, &by)) {
    rb_error(&j->reply, ERR_NOT_INT);
    return 0;
  }
  return incr_by(j, s, now, by);
}

static int cmd_mget(job_t *j, store_t *s, int64_t now) {
  rb_array(&j->reply, (size_t)ARGC(j) - 1);
  for (int i = 1; i < ARGC(j); i++) {
    const void *v;
    size_t vl;
    int rc = store_get(s, ARG(j, i), ARGL(j, i), now, &v, &vl, NULL);
    if (rc < 0)
      return -1;
    if (rc)
      rb_bulk(&j->reply, v, vl);
    else
      rb_nil(&j->reply);
  }
  return 0;
}

static int cmd_mset(job_t *j, store_t *s, int64_t now) {
  (void)now;
  if (ARGC(j) % 2 == 0) {
    reply_arity(j);
    return 0;
  }
  for (int i = 1; i < ARGC(j); i += 2)
    if (store_put(s, ARG(j, i), ARGL(j, i), ARG(j, i + 1), ARGL(j, i + 1), 0) !=
        0)
      return -1;
  rb_status(&j->reply, "OK");
  return 0;
}

static int cmd_dbsize(job_t *j, store_t *s, int64_t now) {
  long long n;
  if (store_count(s, now, &n) != 0)
    return -1;
  rb_int(&j->reply, n);
  return 0;
}

static int cmd_flushdb(job_t *j, store_t *s, int64_t now) {
  (void)now;
  /* ASYNC and SYNC are accepted; the deletion is synchronous either way. */
  if (ARGC(j) > 2 ||
      (ARGC(j) == 2 && !arg_is(j, 1, "async") && !arg_is(j, 1, "sync"))) {
    rb_error(&j->reply, ERR_SYNTAX);
    return 0;
  }
  if (store_flush(s) != 0)
    return -1;
  rb_status(&j->reply, "OK");
  return 0;
}

struct keys_acc {
  rbuf_t items;
  size_t n;
};

static void keys_add(void *arg, const void *k, size_t kl) {
  struct keys_acc *acc = arg;
  rb_bulk(&acc->items, k, kl);
  acc->n++;
}

static int cmd_keys(job_t *j, store_t *s, int64_t now) {
  /* The count heads the reply but is known only at the end. */
  struct keys_acc acc = {.n = 0};
  rb_init(&acc.items);
  int rc = store_keys(s, ARG(j, 1), ARGL(j, 1), now, keys_add, &acc);
  if (rc == 0) {
    rb_array(&j->reply, acc.n);
    rb_raw(&j->reply, acc.items.p, acc.items.len);
  }
  rb_free(&acc.items);
  return rc;
}

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

/* EXPIRE key seconds [NX|XX|GT|LT], following Redis 7's
 * expireGenericCommand(): a time in the past deletes the key. */
static int cmd_expire(job_t *j, store_t *s, int64_t now) {
  long long secs;
  if (!arg_ll(j, 2, &secs)) {
    rb_error(&j->reply, ERR_NOT_INT);
    return 0;
  }
  unsigned flags = 0;
  for (int i = 3; i < ARGC(j); i++) {
    if (arg_is(j, i, "nx"))
      flags |= EXP_NX;
    else if (arg_is(j, i, "xx"))
      flags |= EXP_XX;
    else if (arg_is(j, i, "gt"))
      flags |= EXP_GT;
    else if (arg_is(j, i, "lt"))
      flags |= EXP_LT;
    else {
      rb_error(&j->reply, "ERR Unsupported option %s", ARG(j, i));
      return 0;
    }
  }
  if ((flags & EXP_NX) && (flags & (EXP_XX | EXP_GT | EXP_LT))) {
    rb_error(&j->reply, "ERR NX and XX, GT or LT options at the same time "
                        "are not compatible");
    return 0;
  }
  if ((flags & EXP_GT) && (flags & EXP_LT)) {
    rb_error(&j->reply,
             "ERR GT and LT options at the same time are not compatible");
    return 0;
  }
  if (secs > LLONG_MAX / 1000 || secs < LLONG_MIN / 1000 ||
      secs * 1000 > LLONG_MAX - now) {
    rb_error(&j->reply, "ERR invalid expire time in 'expire' command");
    return 0;
  }
  int64_t when = secs * 1000 + now;
  int64_t cur = 0; /* 0: no TTL */
  int found = store_get(s, ARG(j, 1), ARGL(j, 1), now, NULL, NULL, &cur);
  if (found < 0)
    return -1;
  if (!found || ((flags & EXP_NX) && cur != 0) ||
      ((flags & EXP_XX) && cur == 0) ||
      ((flags & EXP_GT) && (cur == 0 || when <= cur)) ||
      ((flags & EXP_LT) && cur != 0 && when >= cur)) {
    rb_int(&j->reply, 0);
    return 0;
  }
  int rc = when <= now ? store_del(s, ARG(j, 1), ARGL(j, 1), now)
                       : store_set_expire(s, ARG(j, 1), ARGL(j, 1), when);
  if (rc < 0)
    return -1;
  rb_int(&j->reply, 1);
  return 0;
}

static int cmd_ttl(job_t *j, store_t *s, int64_t now) {
  int64_t exp = 0;
  int found = store_get(s, ARG(j, 1), ARGL(j, 1), now, NULL, NULL, &exp);
  if (found < 0)
    return -1;
  if (!found)
    rb_int(&j->reply, -2);
  else if (exp == 0)
    rb_int(&j->reply, -1);
  else /* rounded like Redis: (ttl_ms + 500) / 1000 */
    rb_int(&j->reply, (exp - now + 500) / 1000);
  return 0;
}

/* DEBUG SLEEP seconds: blocks the thread it runs on. On a pool worker that
 * shows the loop staying free; with --inline it shows the opposite. */
static int cmd_debug(job_t *j, store_t *s, int64_t now) {
  (void)s, (void)now;
  if (!(ARGC(j) == 3 && arg_is(j, 1, "sleep"))) {
    rb_error(&j->reply,
             "ERR unknown subcommand or wrong number of arguments for "
             "'%.128s'. Try DEBUG HELP.",
             ARG(j, 1));
    return 0;
  }
  char *end;
  errno = 0;
  double secs = strtod(ARG(j, 2), &end);
  if (ARGL(j, 2) == 0 || end != ARG(j, 2) + ARGL(j, 2) || errno != 0 ||
      !isfinite(secs)) {
    rb_error(&j->reply, "ERR value is not a valid float");
    return 0;
  }
  if (secs > 0) {
    struct timespec ts = {.tv_sec = (time_t)secs};
    ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
      ;
  }
  rb_status(&j->reply, "OK");
  return 0;
}

static const command_t commands[] = {
    {"ping", -1, CMD_LOOP, NULL, cmd_ping},
    {"echo", 2, CMD_LOOP, NULL, cmd_echo},
    {"quit", -1, CMD_LOOP | CMD_QUIT, NULL, cmd_quit},
    {"info", -1, CMD_LOOP, NULL, cmd_info},
    {"config", -2, CMD_LOOP, NULL, cmd_config},
    {"get", 2, 0, cmd_get, NULL},
    {"set", -3, CMD_WRITE, cmd_set, NULL},
    {"del", -2, CMD_WRITE, cmd_del, NULL},
    {"exists", -2, 0, cmd_exists, NULL},
    {"incr", 2, CMD_WRITE, cmd_incr, NULL},
    {"incrby", 3, CMD_WRITE, cmd_incrby, NULL},
    {"mget", -2, 0, cmd_mget, NULL},
    {"mset", -3, CMD_WRITE, cmd_mset, NULL},
    {"dbsize", 1, 0, cmd_dbsize, NULL},
    {"flushdb", -1, CMD_WRITE, cmd_flushdb, NULL},
    {"keys", 2, 0, cmd_keys, NULL},
    {"expire", -3, CMD_WRITE, cmd_expire, NULL},
    {"ttl", 2, 0, cmd_ttl, NULL},
    {"debug", -2, CMD_ALONE, cmd_debug, NULL},
};

int command_prepare(job_t *j) {
  const char *name = ARG(j, 0);
  j->cmd = NULL;
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (strlen(commands[i].name) == ARGL(j, 0) &&
        strcasecmp(commands[i].name, name) == 0) {
      j->cmd = &commands[i];
      break;
    }
  }
  if (j->cmd == NULL) {
    /* Redis quotes the arguments, up to about 128 bytes of them. */
    char args[192];
    size_t len = 0;
    args[0] = '\0';
    for (int i = 1; i < ARGC(j) && len < 128; i++)
      len += (size_t)snprintf(args + len, sizeof args - len, "'%.*s' ",
                              (int)(128 - len), ARG(j, i));
    rb_error(&j->reply,
             "ERR unknown command '%.128s', with args beginning with: %s", name,
             args);
    return -1;
  }
  int arity = j->cmd->arity;
  if ((arity > 0 && ARGC(j) != arity) || ARGC(j) < -arity) {
    reply_arity(j);
    return -1;
  }
  return 0;
}

void command_run_loop(job_t *j, void *ctx) { j->cmd->run_loop(j, ctx); }

/* Replaces every reply of the batch with one storage error. */
static void fail_all(job_t **jobs, size_t n, const char *why) {
  for (size_t i = 0; i < n; i++) {
    rb_reset(&jobs[i]->reply);
    rb_error(&jobs[i]->reply, "ERR storage error: %s", why);
  }
}

void commands_run_batch(job_t **jobs, size_t n) {
  store_t *s = store_current();
  int64_t now = now_ms();
  char why[256];

  if (s == NULL) { /* cannot happen: thread_init failing breaks the pool */
    fail_all(jobs, n, "no database connection");
    return;
  }
  if (n == 1 && (jobs[0]->cmd->flags & CMD_ALONE)) {
    (void)jobs[0]->cmd->run(jobs[0], s, now);
    return;
  }
  int write = 0;
  for (size_t i = 0; i < n; i++)
    write |= (jobs[i]->cmd->flags & CMD_WRITE) != 0;
  if (store_begin(s, write) != 0) {
    snprintf(why, sizeof why, "%s", store_errmsg(s));
    fail_all(jobs, n, why);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (jobs[i]->cmd->run(jobs[i], s, now) == 0)
      continue;
    snprintf(why, sizeof why, "%s", store_errmsg(s));
    if (write) { /* the whole transaction goes: say so for every command */
      store_rollback(s);
      fail_all(jobs, n, why);
      return;
    }
    fail_all(&jobs[i], 1, why); /* a failed read affects only itself */
  }
  /* A failed purge is not the client's problem; if it broke the
   * transaction, the commit below reports it. */
  if (write)
    (void)store_purge(s, now);
  if (store_commit(s) != 0) {
    snprintf(why, sizeof why, "%s", store_errmsg(s));
    store_rollback(s);
    if (write) /* reads already answered from their snapshot stay valid */
      fail_all(jobs, n, why);
  }
}
