/* Combinators: uvpool_when_all, uvpool_when_any, uvpool_submit_after.
 *
 * A join watches its inputs through watchers (future.c): its logic runs
 * the moment an input settles, on the thread that settled it (usually a
 * worker), with no uvpool lock held. So a combination settles, and a
 * dependent task joins the run queue, without the loop: waiting on one
 * from the loop thread works, and at process exit dependent work runs
 * like any queued work. Inputs settle on several threads at once: the
 * output is settled under its pool's mutex, and only while still PENDING,
 * so the first input that decides it wins. Its output is a future of the
 * first input's pool (or of the submitting pool), flagged COMBINED (no
 * work) or HELD (work that waits for its dependencies, on the pool's held
 * list meanwhile). The join holds a reference on every input and on the
 * output until its last watcher ran.
 *
 * `pending` counts the watchers still to run plus one for the creator:
 * whoever brings it to zero finishes the join. */
#include "internal.h"

#include <string.h>

typedef enum { JOIN_ALL, JOIN_ANY, JOIN_AFTER } join_kind_t;

typedef struct {
  uvpool_future_t *out;
  _Atomic size_t pending;
  _Atomic bool aborted;
  join_kind_t kind;
  unsigned flags;
  size_t n;
  uvpool_future_t *in[];
} join_t;

/* Settles out if nobody did yet. A HELD task counts in the statistics
 * (it was an accepted submission); a combination does not. */
static void settle_out(uvpool_future_t *out, uvpool_state_t st, int status,
                       uvpool_future_t *winner, bool count) {
  uvpool_t *pool = uvpool__future_pool(out);
  uint32_t s;
  uv_mutex_lock(&pool->g->mu);
  s = atomic_load_explicit(&out->state, memory_order_relaxed);
  if ((s & UVPOOL__STATE_MASK) == UVPOOL_PENDING) {
    if (s & UVPOOL__F_HELD)
      uvpool__held_remove_locked(pool, out);
    if ((s & UVPOOL__F_HELD) && count)
      uvpool__count_settled_locked(pool, st);
    if (winner != NULL) {
      uvpool_future_ref(winner);
      atomic_fetch_or_explicit(&out->state, UVPOOL__F_RESULT_FUTURE,
                               memory_order_relaxed);
    }
    uvpool__settle(pool, out, st, status, winner);
  }
  uv_mutex_unlock(&pool->g->mu);
  uvpool__watchers_run(); /* out may be another join's input */
}

/* The status rule of uvpool_when_all: 0 if every input is DONE, else the
 * first non-zero status in array order, with that input's state. */
static void settle_all(join_t *j) {
  for (size_t i = 0; i < j->n; i++) {
    int status = uvpool_future_status(j->in[i]);
    if (status != 0) {
      settle_out(j->out, uvpool_future_state(j->in[i]), status, NULL, true);
      return;
    }
  }
  settle_out(j->out, UVPOOL_DONE, 0, NULL, true);
}

/* Every dependency is DONE: the held task joins the run queue, also while
 * the pool closes or the process exits (it was accepted before), unless
 * queued work is being cancelled. */
static void release_held(uvpool_future_t *out) {
  uvpool_t *pool = uvpool__future_pool(out);
  uint32_t s;
  int rc = 0;
  uv_mutex_lock(&pool->g->mu);
  s = atomic_load_explicit(&out->state, memory_order_relaxed);
  if ((s & UVPOOL__STATE_MASK) == UVPOOL_PENDING) {
    uvpool__held_remove_locked(pool, out);
    atomic_fetch_and_explicit(&out->state, ~UVPOOL__F_HELD,
                              memory_order_relaxed);
    if (uvpool__cancelling_queued_locked(pool))
      uvpool__settle_task_locked(pool, out, UVPOOL_CANCELLED, UV_ECANCELED,
                                 NULL);
    else if (pool->g->broken != 0 || uvpool__forked(pool))
      rc = pool->g->broken != 0 ? pool->g->broken : UV_ESHUTDOWN;
    else
      rc = uvpool__enqueue_locked(pool, out);
    if (rc != 0)
      uvpool__settle_task_locked(pool, out, UVPOOL_FAILED, rc, NULL);
  }
  uv_mutex_unlock(&pool->g->mu);
  uvpool__watchers_run();
}

static void join_finish(join_t *j) {
  if (!atomic_load(&j->aborted)) {
    if (j->kind == JOIN_ALL)
      settle_all(j);
    else if (j->kind == JOIN_AFTER)
      release_held(j->out);
  }
  for (size_t i = 0; i < j->n; i++)
    uvpool_future_unref(j->in[i]);
  uvpool_future_unref(j->out);
  uvpool__free(j);
}

static void join_release(join_t *j, size_t count) {
  if (atomic_fetch_sub_explicit(&j->pending, count, memory_order_acq_rel) ==
      count)
    join_finish(j);
}

static bool failed_or_cancelled(uvpool_state_t st) {
  return st == UVPOOL_FAILED || st == UVPOOL_CANCELLED;
}

/* One input settled: runs on the thread that settled it, no lock held. */
static void join_cb(uvpool_future_t *f, void *data) {
  join_t *j = data;
  uvpool_state_t st = uvpool_future_state(f);
  if (!atomic_load(&j->aborted)) {
    if (j->kind == JOIN_ANY)
      settle_out(j->out, UVPOOL_DONE, 0, f, true);
    else if (failed_or_cancelled(st) &&
             (j->kind == JOIN_AFTER || (j->flags & UVPOOL_FAIL_FAST)))
      settle_out(j->out, st, uvpool_future_status(f), NULL, true);
  }
  join_release(j, 1);
}

/* Validates the inputs: non-NULL, all of one loop. */
static int check_inputs(uvpool_future_t *const *fs, size_t n, uv_loop_t *loop) {
  if (fs == NULL || n == 0)
    return UV_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (fs[i] == NULL || uvpool__future_pool(fs[i])->loop != loop)
      return UV_EINVAL;
  return 0;
}

/* Allocates the output: refs for the done list, the caller and the join. */
static int make_out(uvpool_t *pool, uint32_t flags, uvpool_work_cb work,
                    void *arg, uvpool_future_t **out) {
  uvpool_future_t *f;
  int rc = 0;
  bool owner = uvpool__owner_enter(pool); /* see uvpool__keepalive_locked */
  uv_mutex_lock(&pool->g->mu);
  if (uvpool__closed(pool) || uvpool__exiting(pool) || uvpool__forked(pool) ||
      ((flags & UVPOOL__F_HELD) && uvpool__closing(pool)))
    rc = UV_ESHUTDOWN;
  else if ((flags & UVPOOL__F_HELD) && pool->g->broken != 0)
    rc = pool->g->broken;
  else if ((f = uvpool__future_alloc(pool)) == NULL)
    rc = UV_ENOMEM;
  if (rc == 0) {
    uvpool__future_init(f, flags, 3);
    f->u.work = work;
    f->arg = arg;
    pool->outstanding++;
    if (flags & UVPOOL__F_HELD) {
      pool->submitted++;
      uvpool__held_add_locked(pool, f);
    }
    uvpool__keepalive_locked(pool);
    *out = f;
  }
  uv_mutex_unlock(&pool->g->mu);
  if (owner)
    uvpool__owner_leave(pool);
  return rc;
}

/* Registers the join on every input. On failure the join is abandoned:
 * the output is settled (it was never handed out) and the inputs not yet
 * watched are released. */
static int join_start(join_t *j) {
  size_t i;
  int rc = 0;
  /* Inputs settled already are this thread's to report, but only once
   * every watcher is in place: a failure half way must find the output
   * untouched. Their slots in `ready` say which. */
  unsigned char *ready = (unsigned char *)&j->in[j->n];
  for (i = 0; i < j->n; i++) {
    rc = uvpool__future_watch(j->in[i], join_cb, j);
    ready[i] = rc == 1;
    if (rc == 1)
      rc = 0;
    if (rc != 0)
      break;
  }
  if (rc != 0) {
    atomic_store(&j->aborted, true);
    /* Never handed out: it is not a submission in the statistics. */
    settle_out(j->out, UVPOOL_CANCELLED, rc, NULL, false);
    if (j->kind == JOIN_AFTER) {
      uvpool_t *pool = uvpool__future_pool(j->out);
      uv_mutex_lock(&pool->g->mu);
      pool->submitted--;
      uv_mutex_unlock(&pool->g->mu);
    }
    for (size_t k = i; k < j->n; k++) {
      uvpool_future_unref(j->in[k]);
      j->in[k] = NULL;
    }
    uvpool_future_unref(j->out); /* the caller's reference */
    /* The creator's count, the unwatched inputs', and the ready ones'. */
    size_t release = j->n - i + 1;
    for (size_t k = 0; k < i; k++)
      release += ready[k];
    join_release(j, release);
    return rc;
  }
  for (i = 0; i < j->n; i++)
    if (ready[i])
      join_cb(j->in[i], j);
  join_release(j, 1);
  return 0;
}

static int join_new(uvpool_t *pool, join_kind_t kind, unsigned flags,
                    uvpool_future_t *const *fs, size_t n, uvpool_work_cb work,
                    void *arg, uvpool_future_t **out) {
  join_t *j;
  uvpool_future_t *o = NULL;
  int rc = check_inputs(fs, n, pool->loop);
  if (rc != 0)
    return rc;
  /* The inputs, then a byte each for join_start. */
  j = uvpool__malloc(sizeof(*j) + n * (sizeof(uvpool_future_t *) + 1));
  if (j == NULL)
    return UV_ENOMEM;
  rc = make_out(pool, kind == JOIN_AFTER ? UVPOOL__F_HELD : UVPOOL__F_COMBINED,
                work, arg, &o);
  if (rc != 0) {
    uvpool__free(j);
    return rc;
  }
  j->out = o;
  atomic_init(&j->pending, n + 1);
  atomic_init(&j->aborted, false);
  j->kind = kind;
  j->flags = flags;
  j->n = n;
  for (size_t i = 0; i < n; i++)
    j->in[i] = uvpool_future_ref(fs[i]);
  rc = join_start(j);
  if (rc == 0)
    *out = o;
  return rc;
}

int uvpool_when_all(uvpool_future_t *const *fs, size_t n, unsigned flags,
                    uvpool_future_t **out) {
  if (fs == NULL || n == 0 || fs[0] == NULL || out == NULL)
    return UV_EINVAL;
  return join_new(uvpool__future_pool(fs[0]), JOIN_ALL, flags, fs, n, NULL,
                  NULL, out);
}

int uvpool_when_any(uvpool_future_t *const *fs, size_t n,
                    uvpool_future_t **out) {
  if (fs == NULL || n == 0 || fs[0] == NULL || out == NULL)
    return UV_EINVAL;
  return join_new(uvpool__future_pool(fs[0]), JOIN_ANY, 0, fs, n, NULL, NULL,
                  out);
}

int uvpool_submit_after(uvpool_t *pool, uvpool_future_t *const *deps,
                        size_t ndeps, uvpool_work_cb work, void *arg,
                        uvpool_future_t **out) {
  uvpool_future_t *o = NULL;
  int rc;
  if (pool == NULL || work == NULL || (deps == NULL && ndeps != 0))
    return UV_EINVAL;
  if (ndeps == 0)
    return uvpool_submit(pool, work, arg, out);
  rc = join_new(pool, JOIN_AFTER, 0, deps, ndeps, work, arg, &o);
  if (rc != 0)
    return rc;
  if (out != NULL)
    *out = o;
  else
    uvpool_future_unref(o);
  return 0;
}
