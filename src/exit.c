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
 * - Lock order: registry lock, then pool->g->mu (as everywhere).
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
  uvpool__link_t pools; /* open or closing pools, through reg_link */
  bool exiting;
} reg = {.once = PTHREAD_ONCE_INIT, .pools = {&reg.pools, &reg.pools}};

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
    uvpool__list_push_front(&reg.pools, &pool->reg_link);
  }
  uv_mutex_unlock(&reg.mu);
  return rc;
}

void uvpool__registry_remove(uvpool_t *pool) {
  uv_mutex_lock(&reg.mu);
  uvpool__list_remove(&pool->reg_link);
  uv_mutex_unlock(&reg.mu);
}

bool uvpool__registry_has_handle(const uv_handle_t *h) {
  bool found = false;
  pthread_once(&reg.once, reg_init);
  uv_mutex_lock(&reg.mu);
  UVPOOL__LIST_EACH(p, &reg.pools, uvpool_t, reg_link)
  found = found || (const uv_handle_t *)&p->async == h ||
          uvpool__owner_handle(p, h);
  uv_mutex_unlock(&reg.mu);
  return found;
}

/* ---- process exit ------------------------------------------------------ */

void uvpool__exit_changed_locked(uvpool__group_t *g) {
  if (g->exiting)
    uv_cond_broadcast(&g->drain_cv);
}

/* Under p->g->mu. Stops intake and wakes every worker so that idle ones
 * leave and busy ones leave once the queue is empty. The group's inbox
 * closes at its first member's exit: every member exits now. */
static void exit_begin_locked(uvpool_t *p, const uvpool__worker_t *me) {
  uvpool__group_t *g = p->g;
  if (!uvpool__closing(p))
    uvpool__group_stop_taking_locked(g);
  uvpool__life_set(p, UVPOOL__LIFE_EXITING);
  g->exiting = true;
  uvpool__inbox_close(g);
  if (p->opts.flags & UVPOOL_EXIT_CANCEL_PENDING) {
    uvpool__pend_cancel_pool(g, p, UV_ECANCELED);
    uvpool__held_cancel_all(p, UV_ECANCELED);
  }
  if (p->opts.flags & UVPOOL_EXIT_CANCEL_RUNNING)
    uvpool__supply_cancel_running_locked(g, p);
  /* The calling worker will never come back for the queue; and a
   * lock-free submit may have pushed after the last worker left and not
   * yet taken mu to start one. The inbox is closed now, so this look is
   * final. */
  uvpool__inbox_drain_locked(g);
  if (uvpool__runnable(g) + g->q.nlane_parked > 0 &&
      uvpool__supply_workers(g) == (me != NULL && me->g == g ? 1u : 0u))
    (void)uvpool__supply_spawn_locked(g, 0);
  uvpool__supply_broadcast_locked(g);
}

/* How long the exit handler waits for a group's tasks before it says so
 * on stderr: a process whose exit waits for a stuck task must not look
 * hung for no reason. */
#define EXIT_WARN_NS ((uint64_t)3000000000u)

/* Under p->g->mu: cancels what is queued or held once the timeout passed. */
static void exit_cancel_queued_locked(uvpool_t *p) {
  p->exit_timed_out = true;
  uvpool__pend_cancel_pool(p->g, p, UV_ECANCELED);
  uvpool__held_cancel_all(p, UV_ECANCELED);
}

/* p's running tasks, but for the one the calling worker runs. */
static unsigned running_of(const uvpool_t *p, const uvpool__worker_t *me) {
  return p->nrunning -
         (me != NULL && me->current != NULL && me->current->pool == p);
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

/* When p's exit timeout passes (UINT64_MAX: never). */
static uint64_t exit_deadline(const uvpool_t *p, uint64_t start) {
  int64_t t = uvpool__ms_or_none(p->opts.exit_timeout_ms);
  return t >= 0 ? start + (uint64_t)t * 1000000u : UINT64_MAX;
}

/* The exiting members of g: those of the exit handler's list. */
static bool exiting_member(const uvpool_t *p) {
  return uvpool__exiting(p) && !uvpool__closed(p);
}

/* Under g->mu, for the wait below: times out the members whose timeout
 * passed; returns whether a member not timed out still has work, held
 * tasks included, and sets *held to the held tasks of all and *next to
 * the soonest timeout to come. */
static bool exit_look_locked(uvpool__group_t *g, const uvpool__worker_t *me,
                             uint64_t start, uint64_t now, size_t *held,
                             uint64_t *next) {
  bool busy = false;
  *held = 0;
  *next = UINT64_MAX;
  UVPOOL__LIST_EACH(p, &g->pools, uvpool_t, g_link) {
    uint64_t due;
    if (!exiting_member(p))
      continue;
    due = exit_deadline(p, start);
    if (!p->exit_timed_out && now >= due)
      exit_cancel_queued_locked(p);
    *held += p->nheld;
    if (p->exit_timed_out)
      continue;
    busy = busy || running_of(p, me) > 0 || p->nqueued > 0 || p->nheld > 0;
    if (due < *next)
      *next = due;
  }
  return busy;
}

static void exit_warn_group(uvpool__group_t *g, const uvpool__worker_t *me) {
  UVPOOL__LIST_EACH(p, &g->pools, uvpool_t, g_link)
  if (exiting_member(p) && (running_of(p, me) > 0 || p->nheld > 0))
    exit_warn(p, running_of(p, me),
              uvpool__ms_or_none(p->opts.exit_timeout_ms));
}

/* Under g->mu. Waits for the workers to leave and for the held tasks to
 * be released or settled, except for this thread and, once every member
 * with work timed out, the workers stuck in a task. Says so on stderr,
 * once, if that takes more than EXIT_WARN_NS. */
static void exit_wait_locked(uvpool__group_t *g, const uvpool__worker_t *me,
                             uint64_t start) {
  uint64_t warn_at = start + EXIT_WARN_NS;
  bool warned = false;
  for (;;) {
    unsigned running;
    unsigned others = uvpool__supply_others_locked(g, me, &running);
    uint64_t now = uv_hrtime(), until;
    size_t held;
    bool busy = exit_look_locked(g, me, start, now, &held, &until);
    if ((others == 0 && held == 0) || (!busy && others == running))
      return;
    if (!warned && until <= warn_at)
      warned = true; /* a timeout comes first anyway */
    if (!warned && now >= warn_at) {
      warned = true;
      exit_warn_group(g, me);
    }
    if (!warned && warn_at < until)
      until = warn_at;
    if (until == UINT64_MAX)
      uv_cond_wait(&g->drain_cv, &g->mu);
    else if (until > now)
      (void)uv_cond_timedwait(&g->drain_cv, &g->mu, until - now);
  }
}

static void exit_handler(void) {
  uvpool__worker_t *me = uvpool__current_worker();
  uint64_t start = uv_hrtime();
  uvpool_t *list = NULL;
  uvpool__group_t *groups = NULL;

  /* Begin every pool's exit under the registry lock, taking a reference
   * so that a close finishing meanwhile cannot free it (nor its group),
   * then wait, a group at a time, without the lock: work that runs during
   * exit may fork(), whose handler needs the registry lock. */
  uv_mutex_lock(&reg.mu);
  reg.exiting = true;
  UVPOOL__LIST_EACH(p, &reg.pools, uvpool_t, reg_link) {
    uvpool__group_t *g = p->g;
    if (uvpool__forked(p))
      continue;
    atomic_fetch_add(&p->live, 1);
    p->exit_next = list;
    list = p;
    uv_mutex_lock(&g->mu);
    exit_begin_locked(p, me);
    uv_mutex_unlock(&g->mu);
    if (!g->exit_listed) {
      g->exit_listed = true;
      g->exit_next = groups;
      groups = g;
    }
  }
  uv_mutex_unlock(&reg.mu);
  uvpool__watchers_run();

  for (uvpool__group_t *g = groups; g != NULL; g = g->exit_next) {
    uv_mutex_lock(&g->mu);
    exit_wait_locked(g, me, start);
    uv_mutex_unlock(&g->mu);
    uvpool__watchers_run();
    /* Zombies are threads that left the group: joining them is bounded. */
    uvpool__group_stop_threads(g);
  }
  while (list != NULL) {
    uvpool_t *p = list;
    list = p->exit_next;
    uvpool__pool_release(p);
  }
}

/* ---- fork --------------------------------------------------------------- */

/* Holding every lock across fork() means the child's copies are in a
 * consistent state, with no lock held by a thread that does not exist.
 * Each group's mu is taken once, at its first member in the registry. */
static void fork_prepare(void) {
  uv_mutex_lock(&reg.mu);
  UVPOOL__LIST_EACH(p, &reg.pools, uvpool_t, reg_link) {
    uvpool__group_t *g = p->g;
    if (g->fork_locked)
      continue;
    g->fork_locked = true;
    uv_mutex_lock(&g->mu);
    /* A worker publishes its last outcome right after unlocking mu, with
     * no lock: let it finish, or the child never settles that future. */
    while (uvpool__supply_publishing(g))
      sched_yield();
  }
}

static void fork_parent(void) {
  UVPOOL__LIST_EACH(p, &reg.pools, uvpool_t, reg_link) {
    if (!p->g->fork_locked)
      continue;
    p->g->fork_locked = false;
    uv_mutex_unlock(&p->g->mu);
  }
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

/* First the pools, so that what their groups settle next sends nothing
 * (see uvpool__may_send); then each group once; then what the pools hold
 * themselves. */
static void disown_pool(uvpool_t *p) {
  uvpool__life_set(p, UVPOOL__LIFE_FORKED);
  uvpool__owner_fork_child(p);
  /* A close the parent began is the parent's: its callback is not the
   * child's to run, and nothing in the child would finish it, since the
   * wake-up fd changes at uv_loop_fork. The child closes the pool itself
   * (uvpool_close), as any inherited pool; until then nothing here may
   * send on the handle (see uvpool__done_push_chain). */
  uvpool__life_clear(p, UVPOOL__LIFE_CLOSING);
  p->close_flags = 0;
  p->close_cb = NULL;
  p->close_data = NULL;
  clear_future_locks(p);
}

static void disown_rest(uvpool_t *p) {
  uvpool__held_cancel_all(p, UV_ECANCELED);
  p->nrunning = 0;          /* settled by the group's fork child */
  p->loop_watching = false; /* a fork during the loop thread's wait */
}

static void fork_child(void) {
  /* A child forked from work is not a worker of anything. */
  uvpool__forget_worker();
  UVPOOL__LIST_EACH(p, &reg.pools, uvpool_t, reg_link)
  disown_pool(p);
  UVPOOL__LIST_EACH(p, &reg.pools, uvpool_t, reg_link) {
    if (!p->g->fork_locked)
      continue;
    p->g->fork_locked = false;
    uvpool__group_fork_child(p->g); /* which also replaces its mu */
  }
  UVPOOL__LIST_EACH(p, &reg.pools, uvpool_t, reg_link)
  disown_rest(p);
  uv_mutex_unlock(&reg.mu);
  uvpool__watchers_run(); /* of the futures disown_pool settled */
}
