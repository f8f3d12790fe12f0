/* The loop side: one uv_async_t per pool carries every completion and
 * every wake-up. The callback takes the whole done stack with one atomic
 * exchange, runs the callbacks with no lock held, then, under mu, decides
 * whether the handle keeps the loop alive and whether a close can finish. */
#include "internal.h"

/* Under mu. The handle is referenced while anything is undelivered or the
 * pool closes, so an idle pool lets uv_run() return. Only the loop's
 * thread may reference a handle (uv_ref is not thread safe), and only the
 * holder of the owner lock knows the runner's share of outstanding work:
 * any other caller asks the loop to look (the send is safe under mu, see
 * uvpool__done_push). Once the close finished the handle is not touched. */
void uvpool__keepalive_locked(uvpool_t *pool) {
  bool owner = uvpool__owner_held(pool);
  uint64_t n = pool->outstanding + (owner ? pool->loop_outstanding : 0);
  bool want = n > 0 || pool->closing;
  if (atomic_load(&pool->finished) ||
      want == atomic_load_explicit(&pool->refd, memory_order_relaxed))
    return;
  if (!owner) {
    if (want && (!pool->forked || pool->closing) &&
        !atomic_load(&pool->exiting))
      uv_async_send(&pool->async);
    return;
  }
  if (want)
    uv_ref((uv_handle_t *)&pool->async);
  else
    uv_unref((uv_handle_t *)&pool->async);
  atomic_store_explicit(&pool->refd, want, memory_order_relaxed);
}

/* The owner's prepare and check handles close when the close begins, the
 * async handle when it finishes; the last of the three ends the close. */
void uvpool__on_handle_closed(uv_handle_t *h) {
  uvpool_t *pool = h->data;
  if (--pool->handles_open > 0)
    return;
  if (pool->close_cb != NULL)
    pool->close_cb(pool, pool->close_data);
  uvpool__owner_acquire(pool);
  uvpool__free_loop_release(pool); /* finished is set: the list stays empty */
  uvpool__owner_leave(pool);
  uvpool__pool_release(pool);
}

/* Under mu. A close finishes once nothing is queued, running, undelivered
 * or alive: then no thread can send on the handle any more. */
static bool close_can_finish_locked(uvpool_t *pool) {
  return pool->closing && uvpool__supply_workers(pool) == 0 &&
         atomic_load(&pool->done) == NULL && pool->outstanding == 0 &&
         uvpool__queued(pool) == 0;
}

/* No thread may be created from here on (see uvpool__thread_start_locked):
 * once the service threads and the workers that left are joined, no thread
 * of the pool is left. */
static void close_finish(uvpool_t *pool) {
  uvpool__deadline_stop(pool);
  uvpool__monitor_stop(pool);
  uvpool__supply_reap(pool);
  uvpool__registry_remove(pool);
  uv_close((uv_handle_t *)&pool->async, uvpool__on_handle_closed);
}

/* Delivers what the done stack holds; returns how many. */
static uint64_t deliver_all(uvpool_t *pool) {
  uint64_t n = 0;
  /* The done stack is newest first; callbacks go out in completion order. */
  uvpool_future_t *batch = uvpool__list_reverse(
      atomic_exchange_explicit(&pool->done, NULL, memory_order_acquire));
  while (batch != NULL) {
    uvpool_future_t *next = batch->next;
    uvpool__future_deliver(pool, batch);
    batch = next;
    n++;
  }
  return n;
}

/* Waiting for completions on the loop thread. When callbacks submit work
 * from the loop thread (a chain of requests, each started by the last
 * one's result), the next completion often arrives within a microsecond
 * or two, while waking the loop thread from epoll_wait costs several. So
 * after such callbacks the loop thread spins on the done stack for up to
 * WAIT_NS (never longer than spin_us), and delivers at once what arrives.
 * A wait that times out makes the next ones skip (1, 3, 7, ... up to 255
 * chances), so chains of long tasks do not spin; and one async callback
 * spins and delivers for at most BUDGET_NS before the loop runs its
 * other handles. */
#define WAIT_NS 10000u
#define BUDGET_NS 200000u
#define WAIT_MISSES_MAX 8u

static bool done_ready(uvpool_t *pool) {
  return atomic_load_explicit(&pool->done, memory_order_relaxed) != NULL;
}

/* Spins until the done stack is not empty or until `until`; returns
 * whether it is. While loop_watching is set, pushers skip uv_async_send:
 * the seq_cst clear and last look pair with their seq_cst push and look
 * at the flag, so every push is either seen here or sends. */
static bool wait_done(uvpool_t *pool, uint64_t until) {
  atomic_store(&pool->loop_watching, true);
  (void)uvpool__spin_until(pool, until, done_ready);
  atomic_store(&pool->loop_watching, false);
  return atomic_load(&pool->done) != NULL;
}

/* Whether to wait for more after callbacks during which the loop thread
 * submitted `submitted` plain tasks. */
static bool should_wait(uvpool_t *pool, uint64_t submitted) {
  if (submitted == 0 || pool->opts.spin_us == 0 || pool->closing ||
      atomic_load_explicit(&pool->exiting, memory_order_relaxed))
    return false;
  if (pool->wait_skip > 0) {
    pool->wait_skip--;
    return false;
  }
  return true;
}

/* Delivers the done stack, then, while the callbacks keep submitting from
 * this thread, waits for and delivers their completions. */
static uint64_t deliver_and_wait(uvpool_t *pool) {
  uint64_t spin_ns = (uint64_t)pool->opts.spin_us * 1000u;
  uint64_t wait_ns = spin_ns < WAIT_NS ? spin_ns : WAIT_NS;
  uint64_t end = 0, n = 0;
  for (;;) {
    uint64_t before =
        atomic_load_explicit(&pool->loop_submitted, memory_order_relaxed);
    uint64_t now;
    n += deliver_all(pool);
    if (!should_wait(pool, atomic_load_explicit(&pool->loop_submitted,
                                                memory_order_relaxed) -
                               before))
      return n;
    now = uv_hrtime();
    if (end == 0)
      end = now + BUDGET_NS;
    if (now >= end)
      return n;
    if (!wait_done(pool, now + wait_ns < end ? now + wait_ns : end)) {
      if (pool->wait_misses < WAIT_MISSES_MAX)
        pool->wait_misses++;
      pool->wait_skip = (1u << pool->wait_misses) - 1;
      return n;
    }
    pool->wait_misses = 0;
  }
}

void uvpool__async_cb(uv_async_t *handle) {
  uvpool_t *pool = handle->data;
  uint64_t n;
  bool finish, reap;

  /* Held across the callbacks, which may submit or release futures as the
   * runner, in nested steps. */
  uvpool__owner_acquire(pool);
  n = deliver_and_wait(pool);
  uv_mutex_lock(&pool->mu);
  /* Fold the loop thread's share in: outstanding is exact again. */
  pool->outstanding = pool->outstanding + pool->loop_outstanding - n;
  pool->loop_outstanding = 0;
  uvpool__keepalive_locked(pool);
  finish = close_can_finish_locked(pool);
  if (finish)
    atomic_store(&pool->finished, true);
  reap = uvpool__supply_reap_due_locked(pool);
  uv_mutex_unlock(&pool->mu);
  uvpool__owner_leave(pool);

  if (finish) {
    uvpool__hook(UVPOOL__HOOK_CLOSE_DECIDED, pool);
    close_finish(pool);
  } else if (reap)
    uvpool__supply_reap(pool);
}
