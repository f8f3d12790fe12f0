/* The exit registry: the one process-wide object of the library. It lists
 * every pool that is open (or closing), so that process exit can drain and
 * join them, and fork() can disown them in the child.
 *
 * Exit rules:
 * - The handler never waits for the thread it runs on: exit() called from
 *   work leaves that task running and, if no other worker is left to run
 *   what is queued, starts a replacement.
 * - Workers stop sending on the async handle once exiting is set: the loop
 *   may already be gone.
 * - Lock order: registry lock, then pool->mu (as everywhere).
 *
 * Coverage: the exit and fork paths run in child processes (test_exit,
 * test_fork_*). gcov writes a process's counters from its own exit
 * handler, which runs before this one, so reports show the branches of
 * exit_handler and its helpers as never taken although they are. */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

static struct {
  pthread_once_t once;
  uv_mutex_t mu;
  uvpool_t *pools;
  bool exiting;
} reg = {.once = PTHREAD_ONCE_INIT};

static void exit_handler(void);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

static void reg_init(void) {
  if (uv_mutex_init(&reg.mu) != 0)
    abort(); /* GCOVR_EXCL_LINE: glibc's default mutex init cannot fail */
  atexit(exit_handler);
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

int uvpool__registry_add(uvpool_t *pool) {
  int rc = 0;
  pthread_once(&reg.once, reg_init);
  uv_mutex_lock(&reg.mu);
  if (reg.exiting) {
    rc = UV_ESHUTDOWN;
  } else {
    pool->reg_prev = NULL;
    pool->reg_next = reg.pools;
    if (reg.pools != NULL)
      reg.pools->reg_prev = pool;
    reg.pools = pool;
  }
  uv_mutex_unlock(&reg.mu);
  return rc;
}

void uvpool__registry_remove(uvpool_t *pool) {
  uv_mutex_lock(&reg.mu);
  if (pool->reg_prev != NULL)
    pool->reg_prev->reg_next = pool->reg_next;
  else if (reg.pools == pool)
    reg.pools = pool->reg_next;
  if (pool->reg_next != NULL)
    pool->reg_next->reg_prev = pool->reg_prev;
  pool->reg_next = pool->reg_prev = NULL;
  uv_mutex_unlock(&reg.mu);
}

bool uvpool__registry_has_handle(const uv_handle_t *h) {
  bool found = false;
  pthread_once(&reg.once, reg_init);
  uv_mutex_lock(&reg.mu);
  for (uvpool_t *p = reg.pools; p != NULL && !found; p = p->reg_next)
    found = (const uv_handle_t *)&p->async == h || uvpool__owner_handle(p, h);
  uv_mutex_unlock(&reg.mu);
  return found;
}

/* ---- process exit ------------------------------------------------------ */

void uvpool__exit_changed_locked(uvpool_t *pool) {
  if (atomic_load_explicit(&pool->exiting, memory_order_relaxed))
    uv_cond_broadcast(&pool->drain_cv);
}

/* Under p->mu. Stops intake and wakes every worker so that idle ones
 * leave and busy ones leave once the queue is empty. */
static void exit_begin_locked(uvpool_t *p, bool self_is_worker) {
  atomic_store(&p->exiting, true);
  uvpool__inbox_close(p);
  if (p->opts.flags & UVPOOL_EXIT_CANCEL_PENDING) {
    uvpool__pend_cancel_all(p, UV_ECANCELED);
    uvpool__held_cancel_all(p, UV_ECANCELED);
  }
  if (p->opts.flags & UVPOOL_EXIT_CANCEL_RUNNING)
    (void)uvpool__supply_cancel_running_locked(p);
  /* The calling worker will never come back for the queue; and a
   * lock-free submit may have pushed after the last worker left and not
   * yet taken mu to start one. The inbox is closed now, so this look is
   * final. */
  if (uvpool__queued(p) > 0 &&
      uvpool__supply_workers(p) == (self_is_worker ? 1u : 0u))
    (void)uvpool__supply_spawn_locked(p, 0);
  uvpool__supply_broadcast_locked(p);
}

/* How long the exit handler waits for a pool's tasks before it says so on
 * stderr: a process whose exit waits for a stuck task must not look hung
 * for no reason. */
#define EXIT_WARN_NS ((uint64_t)3000000000u)

/* Under p->mu: cancels what is queued or held once the timeout passed. */
static void exit_cancel_queued_locked(uvpool_t *p) {
  uvpool__pend_cancel_all(p, UV_ECANCELED);
  uvpool__held_cancel_all(p, UV_ECANCELED);
}

static void exit_warn(const uvpool_t *p, unsigned running, int64_t t) {
  char bound[48];
  if (t < 0)
    snprintf(bound, sizeof(bound), "forever: the default");
  else
    snprintf(bound, sizeof(bound), "%lld ms", (long long)t);
  fprintf(stderr,
          "uvpool: exit waits for pool \"%s\": %u task%s still run%s, %zu "
          "wait%s for dependencies; exit_timeout_ms bounds this wait "
          "(now %s)\n",
          p->name, running, running == 1 ? "" : "s", running == 1 ? "s" : "",
          p->nheld, p->nheld == 1 ? "s" : "", bound);
}

/* Under p->mu. Waits for the workers to leave and for the held tasks to be
 * released or settled, except for this thread and, after the timeout, the
 * workers stuck in a task. Says so on stderr, once, if that takes more
 * than EXIT_WARN_NS. */
static void exit_wait_locked(uvpool_t *p, const uvpool__worker_t *me,
                             uint64_t start) {
  int64_t t = uvpool__ms_or_none(p->opts.exit_timeout_ms);
  uint64_t deadline = t >= 0 ? start + (uint64_t)t * 1000000u : UINT64_MAX;
  uint64_t warn_at = start + EXIT_WARN_NS;
  bool timed_out = t == 0;
  bool warned = deadline <= warn_at; /* the timeout comes first anyway */
  if (timed_out)
    exit_cancel_queued_locked(p);
  for (;;) {
    unsigned running;
    unsigned others = uvpool__supply_others_locked(p, me, &running);
    uint64_t now = uv_hrtime(), until;
    if ((others == 0 && p->nheld == 0) || (timed_out && others == running))
      return;
    if (!timed_out && now >= deadline) {
      timed_out = true;
      exit_cancel_queued_locked(p);
      continue;
    }
    if (!warned && now >= warn_at) {
      warned = true;
      exit_warn(p, running, t);
    }
    until = timed_out ? UINT64_MAX : deadline;
    if (!warned && warn_at < until)
      until = warn_at;
    if (until == UINT64_MAX)
      uv_cond_wait(&p->drain_cv, &p->mu);
    else
      (void)uv_cond_timedwait(&p->drain_cv, &p->mu, until - now);
  }
}

static void exit_handler(void) {
  uvpool__worker_t *me = uvpool__current_worker();
  uint64_t start = uv_hrtime();
  uvpool_t *list = NULL;

  /* Begin every pool's exit under the registry lock, taking a reference
   * so that a close finishing meanwhile cannot free it, then wait without
   * the lock: work that runs during exit may fork(), whose handler needs
   * the registry lock. */
  uv_mutex_lock(&reg.mu);
  reg.exiting = true;
  for (uvpool_t *p = reg.pools; p != NULL; p = p->reg_next) {
    if (p->forked)
      continue;
    atomic_fetch_add(&p->live, 1);
    p->exit_next = list;
    list = p;
    uv_mutex_lock(&p->mu);
    exit_begin_locked(p, me != NULL && me->pool == p);
    uv_mutex_unlock(&p->mu);
  }
  uv_mutex_unlock(&reg.mu);
  uvpool__watchers_run();

  while (list != NULL) {
    uvpool_t *p = list;
    list = p->exit_next;
    uv_mutex_lock(&p->mu);
    exit_wait_locked(p, me, start);
    uv_mutex_unlock(&p->mu);
    uvpool__watchers_run();
    /* Zombies are threads that left the pool: joining them is bounded. */
    uvpool__supply_reap(p);
    uvpool__deadline_stop(p);
    uvpool__monitor_stop(p);
    uvpool__pool_release(p);
  }
}

/* ---- fork --------------------------------------------------------------- */

/* Holding every lock across fork() means the child's copies are in a
 * consistent state, with no lock held by a thread that does not exist. */
static void fork_prepare(void) {
  uv_mutex_lock(&reg.mu);
  for (uvpool_t *p = reg.pools; p != NULL; p = p->reg_next) {
    uv_mutex_lock(&p->mu);
    /* A worker publishes its last outcome right after unlocking mu, with
     * no lock: let it finish, or the child never settles that future. */
    while (uvpool__supply_publishing(p))
      sched_yield();
  }
}

static void fork_parent(void) {
  for (uvpool_t *p = reg.pools; p != NULL; p = p->reg_next)
    uv_mutex_unlock(&p->mu);
  uv_mutex_unlock(&reg.mu);
}

/* In the child only this thread exists: the pool's workers are gone. What
 * they ran or would have run is settled cancelled, so that nothing in the
 * child waits for them. */
/* A callback lock held by another thread at fork() stays held in the
 * child forever; every future lives in a slab, so clear them all. */
static void clear_future_locks(uvpool_t *p) {
  for (uvpool__slab_t *slab = p->slabs; slab != NULL; slab = slab->next) {
    uvpool_future_t *slots = slab->slots;
    for (size_t i = 0; i < UVPOOL__SLAB_SLOTS; i++) {
      uint32_t s = atomic_fetch_and_explicit(&slots[i].state, ~UVPOOL__F_LOCK,
                                             memory_order_relaxed);
      /* Its holder may have been between two writes of the callback
       * fields: drop the callbacks rather than follow a half-made list. */
      if (s & UVPOOL__F_LOCK) {
        atomic_fetch_and_explicit(
            &slots[i].state,
            ~(UVPOOL__F_HAS_CB | UVPOOL__F_CB_LIST | UVPOOL__F_WATCHED),
            memory_order_relaxed);
        slots[i].cb = NULL;
        slots[i].cb_data = NULL;
      }
      /* Combined futures are on no list: settle them here (held ones are
       * on the held list). Free slots are settled or never used (0). */
      if ((s & UVPOOL__STATE_MASK) == UVPOOL_PENDING &&
          (s & UVPOOL__F_COMBINED))
        uvpool__settle(p, &slots[i], UVPOOL_CANCELLED, UV_ECANCELED, NULL);
    }
  }
}

static void disown_pool(uvpool_t *p) {
  p->forked = true;
  uvpool__owner_fork_child(p);
  /* A close the parent began is the parent's: its callback is not the
   * child's to run, and nothing in the child would finish it, since the
   * wake-up fd changes at uv_loop_fork. The child closes the pool itself
   * (uvpool_close), as any inherited pool; until then nothing here may
   * send on the handle (see uvpool__done_push_chain). */
  p->closing = false;
  p->close_flags = 0;
  p->close_cb = NULL;
  p->close_data = NULL;
  uvpool__inbox_close(p);
  clear_future_locks(p);
  uvpool__supply_fork_child(p);
  uvpool__monitor_fork_child(p);
  uvpool__pend_cancel_all(p, UV_ECANCELED);
  uvpool__held_cancel_all(p, UV_ECANCELED);
  p->dl_running = false;    /* the deadline thread is gone too */
  p->loop_watching = false; /* a fork during the loop thread's wait */
  p->nthreads = 0;          /* none of them exists here: nothing to join */
  /* Nobody waits on these in the child; fresh ones are safe to reuse.
   * The mutex, held since fork_prepare, is replaced rather than unlocked:
   * glibc counts the parent's threads that waited on a condition variable
   * with it as its users, and would refuse to destroy it when the child
   * frees the pool. */
  uv_cond_init(&p->drain_cv);
  uv_cond_init(&p->dl_cv);
  if (uv_mutex_init(&p->mu) != 0)
    abort(); /* GCOVR_EXCL_LINE: glibc's default mutex init cannot fail */
}

static void fork_child(void) {
  /* A child forked from work is not a worker of anything. */
  uvpool__forget_worker();
  for (uvpool_t *p = reg.pools; p != NULL; p = p->reg_next)
    disown_pool(p); /* which also releases p->mu */
  uv_mutex_unlock(&reg.mu);
  uvpool__watchers_run(); /* of the futures disown_pool settled */
}
