/* Submitting work: one task, one task with a callback, one with options,
 * or a batch. Every path either queues all it was given and guarantees a
 * worker will take it, or changes nothing and returns an error.
 *
 * The loop thread submits without mu while the pool is warm (a worker and
 * the monitor exist, the queue is unbounded, the handle keeps the loop
 * alive): its futures come from its private free list, and one push on
 * the lock-free inbox queues a task or a whole batch. Everyone else, and
 * the loop thread when the fast path does not apply, takes mu once per
 * call, batch included. A callback given at submission is stored in the
 * future before it is queued: no thread can see the task without it. */
#include "internal.h"

#include <string.h>

/* What one submit asks for. */
typedef struct {
  uvpool_work_cb work;
  void *arg;
  uvpool_done_cb cb; /* or NULL */
  void *cb_data;
  bool ref; /* the caller takes a reference on the future it gets */
} task_t;

static int submit_check_locked(uvpool_t *pool, size_t n) {
  if (!uvpool__accepts_work(pool))
    return UV_ESHUTDOWN;
  if (pool->g->broken != 0)
    return pool->g->broken;
  if (pool->opts.max_queued == 0)
    return 0;
  uvpool__inbox_drain_locked(pool->g);
  if (uvpool__queued(pool) + n > pool->opts.max_queued)
    return UV_EAGAIN;
  return 0;
}

void uvpool__future_init(uvpool_future_t *f, uint32_t state, unsigned refs) {
  f->cb = NULL;
  f->cb_data = NULL;
  f->arg = NULL;
  atomic_store_explicit(&f->refs, refs, memory_order_relaxed);
  atomic_store_explicit(&f->state, state, memory_order_relaxed);
}

/* refs: the pool's, plus the caller's if it takes one. */
static void task_init(uvpool_future_t *f, const task_t *t, uint32_t flags) {
  uvpool__future_init(f, flags | (t->cb != NULL ? UVPOOL__F_HAS_CB : 0u),
                      t->ref ? 2 : 1);
  f->u.work = t->work;
  f->arg = t->arg;
  f->cb = t->cb;
  f->cb_data = t->cb_data;
}

/* Under mu. Queues an initialised task, also for a pool that is closing
 * (a task accepted earlier whose dependencies just completed). On error
 * nothing is queued. */
int uvpool__enqueue_locked(uvpool_t *pool, uvpool_future_t *f) {
  int rc = uvpool__supply_ensure_locked(pool->g);
  if (rc != 0)
    return rc;
  uvpool__pend_push(pool->g, f);
  uvpool__supply_kick_locked(pool->g);
  return 0;
}

/* Under mu: accepts n tasks that are in the queue now. */
static void accepted_locked(uvpool_t *pool, size_t n) {
  pool->submitted += n;
  pool->outstanding += n;
  uvpool__supply_kick_locked(pool->g);
  uvpool__keepalive_locked(pool);
}

/* Under mu: accepts a task with e (or NULL) as its options. */
static int submit_locked(uvpool_t *pool, const task_t *t, uvpool__ext_t *e,
                         uvpool_future_t **out) {
  uvpool_future_t *f;
  int rc = submit_check_locked(pool, 1);
  if (rc == 0 && e != NULL && e->deadline != 0)
    rc = uvpool__deadline_start_locked(pool->g);
  if (rc == 0)
    rc = uvpool__supply_ensure_locked(pool->g);
  if (rc != 0)
    return rc;
  f = uvpool__future_alloc(pool);
  if (f == NULL)
    return UV_ENOMEM;
  task_init(f, t, e != NULL ? UVPOOL__F_EXT : 0);
  if (e != NULL) {
    e->f = f;
    f->arg = e;
  }
  uvpool__pend_push(pool->g, f);
  accepted_locked(pool, 1);
  if (out != NULL)
    *out = f;
  return 0;
}

/* Whether the loop thread may submit without mu (see the top). */
static bool fast_ok(const uvpool_t *pool) {
  /* closing is read under the owner lock, which uvpool_close takes: the
   * group's inbox stays open for the other members. */
  return atomic_load_explicit(&((uvpool_t *)pool)->refd,
                              memory_order_relaxed) &&
         !uvpool__closing(pool) && pool->opts.max_queued == 0 &&
         uvpool__supply_workers(pool->g) != 0 &&
         uvpool__monitor_running(pool->g);
}

/* The runner's free list holds at least n futures. */
static bool free_loop_has(const uvpool_t *pool, size_t n) {
  const uvpool_future_t *f = pool->free_loop;
  for (; n > 0 && f != NULL; n--)
    f = f->next;
  return n == 0;
}

/* Owner lock held. Queues a chain of n initialised futures, linked newest
 * to oldest, with one push; on a closed inbox gives them back to the
 * runner's list and returns false. */
static bool fast_push(uvpool_t *pool, uvpool_future_t *newest,
                      uvpool_future_t *oldest, size_t n) {
  /* Counted before the push: a worker may finish them before this
   * returns, and a snapshot must not see them completed but not
   * submitted. */
  uint64_t submitted =
      atomic_load_explicit(&pool->loop_submitted, memory_order_relaxed);
  atomic_store_explicit(&pool->loop_submitted, submitted + n,
                        memory_order_relaxed);
  if (!uvpool__inbox_push_chain(pool->g, newest, oldest)) {
    atomic_store_explicit(&pool->loop_submitted, submitted,
                          memory_order_relaxed);
    oldest->next = pool->free_loop;
    pool->free_loop = newest;
    return false;
  }
  pool->loop_outstanding += n;
  if (uvpool__supply_kick(pool->g))
    pool->wait.kicked = true;
  return true;
}

/* The loop thread's plain submit, without mu; UV_EAGAIN when the locked
 * path must decide (it then returns the reason: a closed inbox means a
 * close, exit, broken or forked pool). */
static int submit_fast(uvpool_t *pool, const task_t *t, uvpool_future_t **out) {
  uvpool_future_t *f = pool->free_loop;
  if (f == NULL || !fast_ok(pool))
    return UV_EAGAIN;
  pool->free_loop = f->next;
  task_init(f, t, 0);
  if (!fast_push(pool, f, f, 1))
    return UV_EAGAIN;
  if (out != NULL)
    *out = f;
  return 0;
}

static int submit(uvpool_t *pool, const task_t *t, uvpool_future_t **out) {
  int rc;
  /* The loop's thread: lock-free, or with the locked path adopting the
   * work for the loop (see uvpool__keepalive_locked). */
  bool owner = uvpool__owner_enter(pool);
  if (owner && submit_fast(pool, t, out) == 0) {
    uvpool__owner_leave(pool);
    return 0;
  }
  uv_mutex_lock(&pool->g->mu);
  rc = submit_locked(pool, t, NULL, out);
  /* Stock the runner's list for the next lock-free submits. */
  if (rc == 0 && owner && pool->free_loop == NULL)
    (void)uvpool__free_loop_refill_locked(pool, 1);
  uv_mutex_unlock(&pool->g->mu);
  if (owner)
    uvpool__owner_leave(pool);
  uvpool__watchers_run(); /* of what a failed worker start cancelled */
  return rc;
}

int uvpool_submit(uvpool_t *pool, uvpool_work_cb work, void *arg,
                  uvpool_future_t **out) {
  task_t t = {work, arg, NULL, NULL, out != NULL};
  if (pool == NULL || work == NULL)
    return UV_EINVAL;
  uvpool__check_alive(pool, "uvpool_submit");
  return submit(pool, &t, out);
}

int uvpool_submit_cb(uvpool_t *pool, uvpool_work_cb work, void *arg,
                     uvpool_done_cb cb, void *data) {
  task_t t = {work, arg, cb, data, false};
  if (pool == NULL || work == NULL || cb == NULL)
    return UV_EINVAL;
  uvpool__check_alive(pool, "uvpool_submit_cb");
  return submit(pool, &t, NULL);
}

/* The future is borrowed: no reference is taken, so it is valid only while
 * the caller keeps the task from settling (work.c holds the task's first
 * step back until it recorded the future). */
int uvpool__submit_borrowed(uvpool_t *pool, uvpool_work_cb work, void *arg,
                            uvpool_done_cb cb, void *data,
                            uvpool_future_t **borrowed) {
  task_t t = {work, arg, cb, data, false};
  uvpool__check_alive(pool, "uvpool_queue_work");
  return submit(pool, &t, borrowed);
}

void uvpool_task_options_init(uvpool_task_options_t *o) {
  if (o == NULL)
    return;
  o->priority = 0;
  o->deadline_ms = -1;
  o->lane = 0;
}

int uvpool_submit_ex(uvpool_t *pool, const uvpool_task_options_t *o,
                     uvpool_work_cb work, void *arg, uvpool_future_t **out) {
  task_t t = {work, arg, NULL, NULL, out != NULL};
  uvpool__ext_t *e;
  bool owner;
  int rc;
  if (o == NULL || (o->priority == 0 && o->deadline_ms < 0 && o->lane == 0))
    return uvpool_submit(pool, work, arg, out); /* no options: fast path */
  if (pool == NULL || work == NULL)
    return UV_EINVAL;
  uvpool__check_alive(pool, "uvpool_submit_ex");
  e = uvpool__malloc(sizeof(*e));
  if (e == NULL)
    return UV_ENOMEM;
  memset(e, 0, sizeof(*e));
  e->arg = arg;
  e->priority = o->priority;
  e->lane = o->lane;
  if (uvpool__ms_or_none(o->deadline_ms) >= 0)
    e->deadline = uv_hrtime() + (uint64_t)o->deadline_ms * 1000000u + 1u;
  owner = uvpool__owner_enter(pool); /* see uvpool__keepalive_locked */
  uv_mutex_lock(&pool->g->mu);
  rc = o->lane < pool->g->q.nlanes || o->lane == 0 ? 0 : UV_EINVAL;
  if (rc == 0)
    rc = submit_locked(pool, &t, e, out);
  uv_mutex_unlock(&pool->g->mu);
  if (owner)
    uvpool__owner_leave(pool);
  uvpool__watchers_run();
  if (rc != 0)
    uvpool__free(e);
  return rc;
}

/* ---- batches ------------------------------------------------------------ */

/* Owner lock held, without mu: all n from the runner's list, one push. On
 * a closed inbox futs is restored: each future kept the slot's old value
 * in prev, which no list uses before the push. */
static int many_fast(uvpool_t *pool, uvpool_work_cb work, void *const *args,
                     size_t n, uvpool_future_t **futs) {
  uvpool_future_t *newest = NULL, *oldest = pool->free_loop;
  if (!fast_ok(pool) || !free_loop_has(pool, n))
    return UV_EAGAIN;
  for (size_t i = 0; i < n; i++) {
    uvpool_future_t *f = pool->free_loop;
    task_t t = {work, args[i], NULL, NULL, futs != NULL};
    pool->free_loop = f->next;
    task_init(f, &t, 0);
    f->next = newest;
    newest = f;
    if (futs != NULL) {
      f->prev = futs[i];
      futs[i] = f;
    }
  }
  if (fast_push(pool, newest, oldest, n))
    return 0;
  if (futs != NULL)
    for (size_t i = 0; i < n; i++)
      futs[i] = futs[i]->prev;
  return UV_EAGAIN;
}

/* Under mu: all n futures or none, queued in array order. */
static int many_locked(uvpool_t *pool, uvpool_work_cb work, void *const *args,
                       size_t n, uvpool_future_t **futs) {
  uvpool_future_t *got = NULL;
  size_t have = 0;
  int rc = submit_check_locked(pool, n);
  if (rc == 0)
    rc = uvpool__supply_ensure_locked(pool->g);
  if (rc != 0)
    return rc;
  /* Allocate first: on a shortage nothing has been queued. */
  for (; have < n; have++) {
    uvpool_future_t *f = uvpool__future_alloc(pool);
    if (f == NULL)
      break;
    f->next = got;
    got = f;
  }
  if (have < n) {
    while (got != NULL) {
      uvpool_future_t *next = got->next;
      uvpool__future_unalloc(pool, got);
      got = next;
    }
    return UV_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    uvpool_future_t *f = got;
    task_t t = {work, args[i], NULL, NULL, futs != NULL};
    got = f->next;
    task_init(f, &t, 0);
    uvpool__pend_push(pool->g, f);
    if (futs != NULL)
      futs[i] = f;
  }
  accepted_locked(pool, n);
  return 0;
}

/* Owner lock held: makes sure the runner's list holds n futures, taking
 * mu once for them all. */
static void free_loop_stock(uvpool_t *pool, size_t n) {
  if (free_loop_has(pool, n))
    return;
  uv_mutex_lock(&pool->g->mu);
  (void)uvpool__free_loop_refill_locked(pool, n);
  uv_mutex_unlock(&pool->g->mu);
}

int uvpool_submit_many(uvpool_t *pool, uvpool_work_cb work, void *const *args,
                       size_t n, uvpool_future_t **futs) {
  bool owner;
  int rc;
  if (pool == NULL || work == NULL || args == NULL || n == 0)
    return UV_EINVAL;
  uvpool__check_alive(pool, "uvpool_submit_many");
  owner = uvpool__owner_enter(pool);
  if (owner && fast_ok(pool)) {
    free_loop_stock(pool, n);
    if (many_fast(pool, work, args, n, futs) == 0) {
      uvpool__owner_leave(pool);
      return 0;
    }
  }
  uv_mutex_lock(&pool->g->mu);
  rc = many_locked(pool, work, args, n, futs);
  uv_mutex_unlock(&pool->g->mu);
  if (owner)
    uvpool__owner_leave(pool);
  uvpool__watchers_run();
  return rc;
}
