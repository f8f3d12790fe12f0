/* Which thread runs the pool's loop ("the runner"), and the lock on the
 * state only the runner uses.
 *
 * libuv lets a loop move between threads as long as one uses it at a time;
 * the pool follows it. A prepare handle records, before every poll, which
 * thread runs the loop, and a check handle, after it, that the poll is
 * over: while the flag is up the loop certainly runs, on that thread. Before
 * the loop ever ran the runner is the thread that created the pool, which
 * libuv's rules make the loop's owner at that moment. Both handles are
 * unreferenced: they never keep uv_run() alive.
 *
 * The runner's private state (its free list for lock-free submits, its
 * share of outstanding work, whether the async handle is referenced, the
 * wait heuristics of deliver.c) is guarded by the owner lock, a word that
 * holds the thread using the state now. The runner takes it with one
 * compare-and-swap per step; nested steps (a callback that submits, run by
 * the async callback, which holds the lock) take it with none. A thread
 * that is no longer the runner, because the loop moved, may still be in a
 * step it began before the move; the new runner waits for the lock before
 * it takes over, so the two never overlap, and the old one sees the change
 * once it has the lock.
 *
 * Lock order: the owner lock is only tried (never waited for) while
 * pool->g->mu is held; it is waited for only by the thread taking over, with
 * no lock held (in the prepare and async callbacks, and by loop-thread-only
 * calls that claim the loop). */
#include "internal.h"

#include <sched.h>

/* Waits for the owner lock and makes the calling thread the runner. */
static void owner_take(uvpool_t *pool) {
  uvpool__owner_t *o = &pool->owner;
  uintptr_t self = uvpool__self();
  unsigned spins = 0;
  if (atomic_load_explicit(&o->holder, memory_order_relaxed) == self) {
    /* Already held by this thread: nested in a step of its own. */
    atomic_store_explicit(&o->runner, self, memory_order_relaxed);
    return;
  }
  for (;;) {
    uintptr_t none = 0;
    if (atomic_compare_exchange_weak_explicit(&o->holder, &none, self,
                                              memory_order_acquire,
                                              memory_order_relaxed))
      break;
    if (++spins % 64 == 0) /* GCOVR_EXCL_BR_LINE: a preempted step */
      sched_yield();
  }
  atomic_store_explicit(&o->runner, self, memory_order_relaxed);
  atomic_store_explicit(&o->holder, 0, memory_order_release);
}

static void on_prepare(uv_prepare_t *h) {
  uvpool_t *pool = h->data;
  atomic_store_explicit(&pool->owner.polling, true, memory_order_relaxed);
  if (atomic_load_explicit(&pool->owner.runner, memory_order_relaxed) !=
      uvpool__self())
    owner_take(pool);
}

static void on_check(uv_check_t *h) {
  uvpool_t *pool = h->data;
  atomic_store_explicit(&pool->owner.polling, false, memory_order_relaxed);
}

/* Coverage: uv_prepare_init and uv_check_init cannot fail on Unix. */
int uvpool__owner_init(uvpool_t *pool) {
  uvpool__owner_t *o = &pool->owner;
  atomic_init(&o->runner, uvpool__self());
  atomic_init(&o->holder, 0);
  atomic_init(&o->polling, false);
  o->depth = 0;
  if (uv_prepare_init(pool->loop, &o->prepare) != 0) /* GCOVR_EXCL_BR_LINE */
    return UV_EINVAL;                                /* GCOVR_EXCL_LINE */
  if (uv_check_init(pool->loop, &o->check) != 0) {   /* GCOVR_EXCL_BR_LINE */
    uv_close((uv_handle_t *)&o->prepare, NULL);      /* GCOVR_EXCL_LINE */
    return UV_EINVAL;                                /* GCOVR_EXCL_LINE */
  }
  o->prepare.data = pool;
  o->check.data = pool;
  uv_prepare_start(&o->prepare, on_prepare);
  uv_check_start(&o->check, on_check);
  uv_unref((uv_handle_t *)&o->prepare);
  uv_unref((uv_handle_t *)&o->check);
  return 0;
}

void uvpool__owner_close(uvpool_t *pool, uv_close_cb cb) {
  uvpool__owner_t *o = &pool->owner;
  atomic_store_explicit(&o->polling, false, memory_order_relaxed);
  uv_close((uv_handle_t *)&o->prepare, cb);
  uv_close((uv_handle_t *)&o->check, cb);
}

bool uvpool__owner_closing(const uvpool_t *pool) {
  return uv_is_closing((const uv_handle_t *)&pool->owner.prepare) != 0;
}

bool uvpool__owner_handle(const uvpool_t *pool, const uv_handle_t *h) {
  return h == (const uv_handle_t *)&pool->owner.prepare ||
         h == (const uv_handle_t *)&pool->owner.check;
}

void uvpool__owner_acquire(uvpool_t *pool) {
  owner_take(pool);
  while (!uvpool__owner_enter(pool)) /* GCOVR_EXCL_BR_LINE: see owner_take */
    owner_take(pool);                /* GCOVR_EXCL_LINE */
}

int uvpool__owner_claim(uvpool_t *pool) {
  uvpool__owner_t *o = &pool->owner;
  if (atomic_load_explicit(&o->runner, memory_order_relaxed) !=
          uvpool__self() &&
      atomic_load_explicit(&o->polling, memory_order_relaxed))
    return UV_EINVAL; /* the loop runs on another thread right now */
  uvpool__owner_acquire(pool);
  return 0;
}

void uvpool__owner_fork_child(uvpool_t *pool) {
  uvpool__owner_t *o = &pool->owner;
  /* Only the forking thread exists: a lock another thread held is free,
   * and no thread polls. The runner stays: it is this thread or nobody. */
  atomic_store_explicit(&o->holder, 0, memory_order_relaxed);
  atomic_store_explicit(&o->polling, false, memory_order_relaxed);
  o->depth = 0;
}
