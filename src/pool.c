/* uvpool: the executor's public entry points.
 *
 * Design notes (the invariants the other files rely on):
 * 0. Two owners. A group (group.c) owns what workers touch: the run
 *    queue and lanes (queue.c), the workers (supply.c, worker.c), the
 *    monitor and the deadline thread (monitor.c, deadline.c, on
 *    service.c). A pool owns what its loop touches: the handle and the
 *    delivery (deliver.c), its futures (future.c), its counters, its
 *    close, its lifecycle (one word of stages, internal.h). A pool made
 *    without share is a group of one; a task finds its pool through its
 *    future (f->pool).
 * 1. One mutex per group (g->mu) guards the run queue, the worker lists
 *    and every member pool's counters. The exceptions are lock-free and
 *    each has its rule where it lives: the loop threads' submits (the
 *    inbox, queue.c, and uvpool__supply_kick, supply.c), the done list
 *    (deliver.c) and the free stack (future.c). Work and done callbacks
 *    run with no uvpool lock held, so they may call any uvpool function,
 *    exit() or fork().
 * 2. Lock order: exit registry lock, then g->mu, then a future's F_LOCK
 *    bit. No code takes them the other way round. The owner lock
 *    (owner.c), which guards the runner's private state, is taken before
 *    g->mu, or only tried under it; it is waited for with no lock held.
 *    Watchers (combine.c) run with no lock held: a settler under g->mu
 *    leaves them for after its unlock (uvpool__watchers_run).
 * 3. A future is on at most one list at a time: run queue, a worker's
 *    hands (the task it runs, or a settled fire-and-forget future it
 *    keeps for a batch push), the done list, or the free list. The pool
 *    owns one reference from submit until its first delivery; requeueing
 *    for callbacks added later takes another.
 * 3b. The loop thread is the thread that runs the loop (owner.c), seen at
 *    every iteration; loop-only libuv calls (uv_ref, uv_close) are made by
 *    the holder of the owner lock or from the pool's own callbacks.
 * 4. Results reach the loop only through the pool's done list plus one
 *    uv_async_send. A worker pushes and sends without mu, inside its
 *    publish window (pubseq odd, worker.c); every other thread does both
 *    under mu. A close decides to finish under mu once nothing of the pool
 *    is queued, running or undelivered; the last member's close also
 *    waits for every worker to leave, any other waits for the publish
 *    windows open at that moment to end (uvpool__supply_quiesce). So no
 *    send races uv_close. Once process exit began nothing sends, and while
 *    the loop thread spins on the done list for work it just submitted
 *    (deliver.c) a push need not send: the loop sees it.
 * 5. pool->live counts the open pool plus every future not on the free
 *    list; memory (slabs) is released when it drops to zero, so futures
 *    outlive their pool's close. A group's memory lives until its last
 *    member's; every thread of the group is joined before (g->nthreads).
 * 6. uvpool_submit either queues the task and guarantees a worker will
 *    take it, or changes nothing and returns an error. Every rule that
 *    starts, wakes, spins, parks or retires a worker lives in supply.c;
 *    the monitor (monitor.c) only measures and asks it for help.
 * 7. No completion waits for a spin: a worker publishes an outcome before
 *    it looks for more work, and spins (supply.c) only after that.
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void uvpool_options_init(uvpool_options_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof(*opts));
  opts->exit_timeout_ms = -1;
  opts->spin_us = UVPOOL_SPIN_DEFAULT;
}

#define VERSION_STR_(x) #x
#define VERSION_STR(x) VERSION_STR_(x)

const char *uvpool_version_string(void) {
  return VERSION_STR(UVPOOL_VERSION_MAJOR) "." VERSION_STR(
      UVPOOL_VERSION_MINOR) "." VERSION_STR(UVPOOL_VERSION_PATCH);
}

/* The pool's own options; the worker options are its group's (group.c). */
static void options_resolve(uvpool_t *pool, const uvpool_options_t *in) {
  uvpool_options_t o;
  uvpool_options_init(&o);
  if (in != NULL)
    o = *in;
  pool->opts = o;
}

int uvpool_new(uv_loop_t *loop, const uvpool_options_t *opts, uvpool_t **out) {
  uvpool_t *pool;
  int rc;
  if (loop == NULL || out == NULL)
    return UV_EINVAL;
  pool = uvpool__aligned_alloc(_Alignof(uvpool_t), sizeof(*pool));
  if (pool == NULL)
    return UV_ENOMEM;
  memset(pool, 0, sizeof(*pool));
  options_resolve(pool, opts);
  rc = uvpool__group_join(pool, &pool->opts);
  if (rc != 0)
    goto fail;
  uvpool__hook(UVPOOL__HOOK_POOL_JOINED, pool->g->root);
  pool->opts.share = NULL; /* the group holds what it needs */
  snprintf(pool->name, sizeof(pool->name), "%s", pool->g->name);
  pool->opts.name = pool->name;
  pool->loop = loop;
  pool->magic = UVPOOL__MAGIC;
  atomic_init(&pool->live, 1);
  rc = uvpool__registry_add(pool);
  if (rc != 0)
    goto fail_group;
  /* Cannot fail once the loop is initialised: uv_loop_init already made
   * the loop's async eventfd. Checked anyway. */
  rc = uv_async_init(loop, &pool->async, uvpool__async_cb);
  if (rc != 0)          /* GCOVR_EXCL_BR_LINE */
    goto fail_registry; /* GCOVR_EXCL_LINE */
  pool->async.data = pool;
  uv_unref((uv_handle_t *)&pool->async);
  rc = uvpool__owner_init(pool);
  if (rc != 0) { /* GCOVR_EXCL_BR_LINE */
    /* libuv holds the handle until its close callback: the pool's memory
     * is left to it (neither init can fail on Unix). */
    uv_close((uv_handle_t *)&pool->async, NULL); /* GCOVR_EXCL_LINE */
    uvpool__registry_remove(pool);               /* GCOVR_EXCL_LINE */
    uvpool__group_leave(pool);                   /* GCOVR_EXCL_LINE */
    return rc;                                   /* GCOVR_EXCL_LINE */
  }
  /* Members' sends (a worker that leaves pokes every member) may use the
   * handle from now on: set under mu, which they hold. */
  uv_mutex_lock(&pool->g->mu);
  uvpool__life_set(pool, UVPOOL__LIFE_READY);
  uv_mutex_unlock(&pool->g->mu);
  *out = pool;
  return 0;
fail_registry:
  uvpool__registry_remove(pool); /* GCOVR_EXCL_LINE: see uv_async_init */
fail_group:
  uvpool__group_leave(pool);
fail:
  uvpool__free(pool);
  return rc;
}

/* Called when pool->live drops to zero: the pool closed and every future
 * was released. */
void uvpool__pool_release(uvpool_t *pool) {
  if (atomic_fetch_sub_explicit(&pool->live, 1, memory_order_acq_rel) != 1)
    return;
  uvpool__slabs_free(pool);
  uvpool__group_leave(pool);
  pool->magic = UVPOOL__MAGIC_FREED; /* a later call may see it, or not */
  uvpool__free(pool);
}

/* A call on a pool whose memory was released: misuse that would
 * otherwise corrupt whatever reuses it. Caught while the memory still
 * reads as freed; guaranteed only under ASan or valgrind. */
void uvpool__check_alive(const uvpool_t *pool, const char *fn) {
  if (pool->magic != UVPOOL__MAGIC) /* GCOVR_EXCL_BR_LINE */
    uvpool__misuse(fn, "pool used after its last reference was released");
}

uvpool_t *uvpool_ref(uvpool_t *pool) {
  if (pool == NULL)
    return NULL;
  uvpool__check_alive(pool, "uvpool_ref");
  atomic_fetch_add_explicit(&pool->user_refs, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&pool->live, 1, memory_order_relaxed);
  return pool;
}

void uvpool_unref(uvpool_t *pool) {
  unsigned long refs;
  if (pool == NULL)
    return;
  uvpool__check_alive(pool, "uvpool_unref");
  refs = atomic_load_explicit(&pool->user_refs, memory_order_relaxed);
  do {
    if (refs == 0)
      uvpool__misuse("uvpool_unref", "no reference left to release (the "
                                     "creator's is released by uvpool_close)");
  } while (!atomic_compare_exchange_weak_explicit(
      &pool->user_refs, &refs, refs - 1, memory_order_relaxed,
      memory_order_relaxed));
  uvpool__pool_release(pool);
}

/* Lanes belong to the group: a lane made on one member is valid on
 * every member. */
int uvpool_lane_new(uvpool_t *pool, unsigned max_running, unsigned *lane_out) {
  int rc;
  if (pool == NULL || max_running == 0 || lane_out == NULL)
    return UV_EINVAL;
  uvpool__check_alive(pool, "uvpool_lane_new");
  uv_mutex_lock(&pool->g->mu);
  rc = uvpool__accepts_work(pool)
           ? uvpool__lane_add_locked(pool->g, max_running, lane_out)
           : UV_ESHUTDOWN;
  uv_mutex_unlock(&pool->g->mu);
  return rc;
}

/* Under mu and the owner lock. The group's inbox stays open for the other
 * members: this pool's own lock-free submits check closing under the
 * owner lock, which this holds. */
static int close_begin_locked(uvpool_t *pool, unsigned flags,
                              uvpool_close_cb cb, void *data) {
  uvpool__group_t *g = pool->g;
  if (uvpool__closing(pool))
    return UV_EINVAL;
  if (uvpool__exiting(pool))
    return UV_ESHUTDOWN;
  if (!uvpool__forked(pool))
    uvpool__group_stop_taking_locked(g);
  uvpool__life_set(pool, UVPOOL__LIFE_CLOSING);
  /* The owner's handles close first: a uv_walk() sweep, which visits the
   * async handle first (the oldest), then sees them closing and skips
   * them (see uvpool_from_handle). */
  if (!uvpool__owner_closing(pool)) { /* a fork child of a closing pool */
    pool->handles_open = 3;
    uvpool__owner_close(pool, uvpool__on_handle_closed);
  }
  pool->close_flags = flags;
  pool->close_cb = cb;
  pool->close_data = data;
  if (flags & UVPOOL_CANCEL_PENDING) {
    uvpool__pend_cancel_pool(g, pool, UV_ECANCELED);
    uvpool__held_cancel_all(pool, UV_ECANCELED);
  }
  if (flags & UVPOOL_CANCEL_RUNNING)
    uvpool__supply_cancel_running_locked(g, pool);
  if (uvpool__forked(pool))
    pool->async.pending = 0; /* stale from the parent: uv_loop_fork made a
                                new wake-up fd, so a set flag blocks sends */
  uvpool__keepalive_locked(pool);
  /* The async callback finishes the close; never synchronously here. */
  uv_async_send(&pool->async);
  return 0;
}

int uvpool_close(uvpool_t *pool, unsigned flags, uvpool_close_cb cb,
                 void *data) {
  int rc;
  if (pool == NULL)
    return UV_EINVAL;
  uvpool__check_alive(pool, "uvpool_close");
  rc = uvpool__owner_claim(pool);
  if (rc != 0)
    return rc;
  uv_mutex_lock(&pool->g->mu);
  rc = close_begin_locked(pool, flags, cb, data);
  uv_mutex_unlock(&pool->g->mu);
  uvpool__owner_leave(pool);
  uvpool__watchers_run(); /* of what the close cancelled */
  return rc;
}

/* The task counts are the pool's own, the worker counts its group's. */
int uvpool_stats(uvpool_t *pool, uvpool_stats_t *out) {
  bool owner;
  if (pool == NULL || out == NULL)
    return UV_EINVAL;
  uvpool__check_alive(pool, "uvpool_stats");
  owner = uvpool__owner_enter(pool);
  uv_mutex_lock(&pool->g->mu);
  out->submitted = pool->submitted + atomic_load_explicit(&pool->loop_submitted,
                                                          memory_order_relaxed);
  out->completed = pool->completed;
  out->failed = pool->failed;
  out->cancelled = pool->cancelled;
  uvpool__inbox_drain_locked(pool->g);
  out->queued = uvpool__queued(pool);
  out->running = pool->nrunning;
  uvpool__supply_stats_locked(pool->g, out);
  /* Adopts work that other threads made outstanding (see the header). */
  if (owner)
    uvpool__keepalive_locked(pool);
  uv_mutex_unlock(&pool->g->mu);
  if (owner)
    uvpool__owner_leave(pool);
  return 0;
}

uv_loop_t *uvpool_loop(const uvpool_t *pool) {
  return pool != NULL ? pool->loop : NULL;
}

uvpool_t *uvpool_from_handle(const uv_handle_t *handle) {
  if (handle == NULL || !uvpool__registry_has_handle(handle))
    return NULL;
  /* The prepare and check handles answer until they close, which they do
   * when the pool's close begins. */
  if (handle->type != UV_ASYNC && uv_is_closing(handle))
    return NULL;
  return handle->data;
}
