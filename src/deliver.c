/* The loop side: one uv_async_t per pool carries every completion and
 * every wake-up. The callback takes the whole done stack with one atomic
 * exchange, runs the callbacks with no lock held, then, under mu, decides
 * whether the handle keeps the loop alive and whether a close can finish. */
#include "internal.h"

/* ---- the done list ------------------------------------------------------ */

/* The done list is a multi-producer stack (Treiber): workers push without
 * the group's lock; the loop takes it whole with one exchange and reverses
 * it to completion order. Only that exchange consumes, so there is no ABA.
 * The loop is woken only when the stack goes from empty to non-empty and
 * the loop thread is not spinning on it, and uv_async_send coalesces
 * anyway.
 *
 * The send never races uv_close: a close finishes only when, under mu,
 * nothing of the pool is queued, running or undelivered, and then waits
 * for the workers' publish windows open at that moment to end
 * (uvpool__supply_quiesce); a worker pushes and sends inside its window.
 * Every other caller pushes and sends under mu. */
void uvpool__done_push(uvpool_t *pool, uvpool_future_t *f) {
  uvpool__done_push_chain(pool, f, f);
}

/* A worker asks whether its publish woke the loop, or was caught by a
 * loop thread spinning for it (see supply.c). */
static _Thread_local bool tls_woke_loop, tls_caught;

bool uvpool__woke_loop_take(void) {
  bool woke = tls_woke_loop;
  tls_woke_loop = false;
  return woke;
}

bool uvpool__caught_take(void) {
  bool caught = tls_caught;
  tls_caught = false;
  return caught;
}

void uvpool__done_push_chain(uvpool_t *pool, uvpool_future_t *first,
                             uvpool_future_t *last) {
  /* A loop thread that spins on the list sees the push: no send. The
   * seq_cst push and load pair with the loop's (see wait_done). */
  if (!uvpool__stack_push_chain(&pool->done, first, last))
    return;
  if (atomic_load(&pool->loop_watching)) {
    tls_caught = true;
    return;
  }
  if (uvpool__may_send(pool)) {
    /* When, for the loop thread's wait predictor (deliver.c): the send is
     * a system call anyway. */
    atomic_store_explicit(&pool->sent_at, uv_hrtime(), memory_order_relaxed);
    uv_async_send(&pool->async);
    tls_woke_loop = true;
  }
}

/* ---- keep-alive and close ------------------------------------------------ */

/* Under mu. The handle is referenced while anything is undelivered or the
 * pool closes, so an idle pool lets uv_run() return. Only the loop's
 * thread may reference a handle (uv_ref is not thread safe), and only the
 * holder of the owner lock knows the runner's share of outstanding work:
 * any other caller asks the loop to look (the send is safe under mu, see
 * uvpool__done_push). Once the close finished the handle is not touched. */
void uvpool__keepalive_locked(uvpool_t *pool) {
  bool owner = uvpool__owner_held(pool);
  uint64_t n = pool->outstanding + (owner ? pool->loop_outstanding : 0);
  bool want = n > 0 || uvpool__closing(pool);
  if (uvpool__closed(pool) ||
      want == atomic_load_explicit(&pool->refd, memory_order_relaxed))
    return;
  if (!owner) {
    if (want && uvpool__may_send(pool))
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

/* Under mu. A close finishes once nothing of the pool is queued, running
 * or undelivered. The last member of its group to get there, once no
 * member takes work any more, also waits for every worker to leave and
 * then stops the group's threads: a member still closing may have
 * accepted work (a task held for its dependencies) that needs them. */
static bool close_can_finish_locked(uvpool_t *pool, bool *stop_group) {
  uvpool__group_t *g = pool->g;
  if (!uvpool__closing(pool) || atomic_load(&pool->done) != NULL ||
      pool->outstanding != 0 || pool->nrunning != 0)
    return false;
  uvpool__inbox_drain_locked(g);
  if (uvpool__queued(pool) != 0)
    return false;
  *stop_group = (g->nopen == 0 && g->nundecided == 1) || g->forked;
  if (*stop_group && uvpool__supply_workers(g) != 0)
    return false;
  if (*stop_group)
    g->stopped = true; /* no thread of the group starts from here on */
  g->nundecided--;
  return true;
}

/* With the group stopped, no thread may be created from here on (see
 * uvpool__thread_start_locked): once the service threads and the workers
 * that left are joined, no thread of the group is left. Otherwise the
 * workers stay for the other members, and only the outcomes they were
 * publishing when the close decided are waited for: after that none
 * touches this pool. */
static void close_finish(uvpool_t *pool, bool stop_group) {
  if (stop_group)
    uvpool__group_stop_threads(pool->g);
  else
    uvpool__supply_quiesce(pool->g);
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
 * one's result), the next completion may arrive sooner than a wake-up of
 * the loop thread from epoll_wait would take. So after such callbacks the
 * loop thread may spin on the done stack, and deliver at once what
 * arrives; whether, and how long, its predictor decides (supply.c). A wait
 * it does not spin for ends at the next async callback: that is the wait
 * it measures. One async callback spins and delivers for at most
 * BUDGET_NS before the loop runs its other handles. */
#define BUDGET_NS 200000u

static bool done_ready(void *arg) {
  uvpool_t *pool = arg;
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

/* When the callbacks' submits had to wake a worker (none was spinning),
 * the completion is a wake-up away, and spinning for it rarely pays; but
 * if the tasks are short, a spin that catches it lets the worker spin for
 * the next task (see supply.c), and from then on neither side sleeps. So
 * such a wait probes: a spin of two wake-ups' length, skipped after
 * misses for 1, 3, 7, ... up to 255 chances. */
#define PROBE_MISSES_MAX 8u

/* Whether a probe skips this chance. */
static bool probe_skip(uvpool_t *pool, bool probe) {
  if (!probe || pool->wait.probe == 0)
    return false;
  pool->wait.probe--;
  return true;
}

static void probe_result(uvpool_t *pool, bool hit) {
  if (hit) {
    pool->wait.probe_misses = 0;
    return;
  }
  if (pool->wait.probe_misses < PROBE_MISSES_MAX)
    pool->wait.probe_misses++;
  pool->wait.probe = (1u << pool->wait.probe_misses) - 1;
}

/* Whether to look for completions after callbacks during which the loop
 * thread submitted `submitted` plain tasks. */
static bool may_wait(const uvpool_t *pool, uint64_t submitted) {
  return submitted != 0 && !uvpool__closing(pool) && !uvpool__exiting(pool);
}

/* Delivers the done stack, then, while the callbacks keep submitting from
 * this thread, waits for and delivers their completions where that pays. */
static uint64_t deliver_and_wait(uvpool_t *pool) {
  uint64_t end = 0, n = 0, now = uv_hrtime();
  if (pool->wait.since != 0) { /* the wait that did not spin ended */
    /* When the completion was pushed, and what waking this thread took. */
    uint64_t sent = atomic_load_explicit(&pool->sent_at, memory_order_relaxed);
    if (sent < pool->wait.since || sent > now)
      sent = now;
    uvpool__spin_saw_wait(&pool->wait.pred, sent - pool->wait.since);
    if (sent < now)
      uvpool__spin_saw_wake(&pool->wait.pred, now - sent);
    pool->wait.since = 0;
  }
  for (;;) {
    uint64_t before =
        atomic_load_explicit(&pool->loop_submitted, memory_order_relaxed);
    uint64_t len, t;
    bool hit, probe;
    n += deliver_all(pool);
    if (!may_wait(pool, atomic_load_explicit(&pool->loop_submitted,
                                             memory_order_relaxed) -
                            before))
      return n;
    now = uv_hrtime();
    if (end == 0)
      end = now + BUDGET_NS;
    probe = pool->wait.kicked;
    pool->wait.kicked = false;
    len = probe_skip(pool, probe) ? 0 : uvpool__spin_len_loop(pool, probe);
    if (len == 0 || now >= end) {
      pool->wait.since = probe ? 0 : now;
      return n;
    }
    hit = wait_done(pool, now + len < end ? now + len : end);
    t = uv_hrtime();
    uvpool__spin_spent(pool->g, t - now, hit);
    if (probe)
      probe_result(pool, hit);
    if (!hit) {
      pool->wait.since = probe ? 0 : now; /* measured when it ends */
      return n;
    }
    if (!probe)
      uvpool__spin_saw_wait(&pool->wait.pred, t - now);
  }
}

void uvpool__async_cb(uv_async_t *handle) {
  uvpool_t *pool = handle->data;
  uint64_t n;
  bool finish, reap, stop_group = false;

  /* Held across the callbacks, which may submit or release futures as the
   * runner, in nested steps. */
  uvpool__owner_acquire(pool);
  n = deliver_and_wait(pool);
  uv_mutex_lock(&pool->g->mu);
  /* Fold the loop thread's share in: outstanding is exact again. */
  pool->outstanding = pool->outstanding + pool->loop_outstanding - n;
  pool->loop_outstanding = 0;
  uvpool__keepalive_locked(pool);
  finish = close_can_finish_locked(pool, &stop_group);
  if (finish)
    uvpool__life_set(pool, UVPOOL__LIFE_CLOSED);
  reap = uvpool__supply_reap_due_locked(pool->g);
  uv_mutex_unlock(&pool->g->mu);
  uvpool__owner_leave(pool);

  if (finish) {
    uvpool__hook(UVPOOL__HOOK_CLOSE_DECIDED, pool);
    close_finish(pool, stop_group);
  } else if (reap)
    uvpool__supply_reap(pool->g);
}
