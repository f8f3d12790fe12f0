/* Worker supply: how many workers a pool has, and what an idle one does.
 * Every rule that starts, wakes, spins, parks or retires a worker lives
 * here, and so do the counts those rules read (uvpool__supply_t); other
 * files change them only through these functions. The monitor thread
 * (monitor.c) only measures: it asks count_stuck and supply_add here.
 *
 * Counts, all under pool->mu (the few that the lock-free submit reads are
 * atomics, written under mu):
 * - nworkers: started and not yet left (starting ones included);
 * - nidle: starting, spinning or parked, that is not running a task. A
 *   worker finishing a task counts itself idle before it publishes the
 *   outcome, so a thread that waits on the future and then submits finds
 *   it idle (the "idle reuse race");
 * - nstarting, nspinning, nparked: the idle ones by what they do;
 * - nleaving: idle workers past their idle timeout, on their way out.
 *
 * Starting a worker (supply_spawn): only while the workers started or
 * starting, less those leaving, are fewer than the tasks that run or wait
 * for a worker (lane-parked ones do not), and fewer than max_workers. A
 * starting worker is supply for every caller (submit, the monitor, a
 * leaving worker, exit), however long it takes to start. Submit starts one
 * only when the pool has none; the monitor adds the others (monitor.c).
 *
 * Waking (supply_kick): a task queued while a worker spins needs nothing;
 * while workers are parked, one is signalled, unless one already was; with
 * every worker busy, the monitor is woken to watch the queue.
 *
 * Idle workers spin, then park: see the spin predictor below. Parked
 * workers above min_workers leave after idle_timeout_ms. */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- counts ------------------------------------------------------------- */

int uvpool__supply_init(uvpool_t *pool) {
  uvpool__supply_t *s = &pool->supply;
  memset(s, 0, sizeof(*s));
  return uv_cond_init(&s->work_cv);
}

void uvpool__supply_destroy(uvpool_t *pool) {
  uv_cond_destroy(&pool->supply.work_cv);
}

unsigned uvpool__supply_workers(const uvpool_t *pool) {
  return atomic_load_explicit(&((uvpool_t *)pool)->supply.nworkers,
                              memory_order_relaxed);
}

void uvpool__supply_stats_locked(const uvpool_t *pool, uvpool_stats_t *out) {
  const uvpool__supply_t *s = &pool->supply;
  out->running = s->nrunning;
  out->workers = s->nworkers;
  out->idle_workers = s->nidle;
  out->peak_workers = s->npeak;
}

/* ---- starting workers --------------------------------------------------- */

/* Under mu: whether one more worker is wanted (see the top of the file),
 * with `incoming` tasks about to be queued. */
static bool wanted_locked(uvpool_t *pool, size_t incoming) {
  uvpool__supply_t *s = &pool->supply;
  uvpool__worker_t *me = uvpool__current_worker();
  size_t supply = s->nworkers - s->nleaving;
  size_t demand = s->nrunning + uvpool__runnable_estimate(pool) + incoming;
  size_t alive = s->nworkers;
  /* A worker that called exit() from its task never comes back for the
   * queue: it is neither supply nor counted against max_workers. */
  if (me != NULL && me->pool == pool && me->current != NULL &&
      atomic_load(&pool->exiting)) {
    supply--;
    alive--;
  }
  return alive < pool->opts.max_workers && supply < demand;
}

int uvpool__supply_spawn_locked(uvpool_t *pool, size_t incoming) {
  uvpool__supply_t *s = &pool->supply;
  uvpool__worker_t *w;
  int rc;
  if (!wanted_locked(pool, incoming))
    return 0;
  w = uvpool__malloc(sizeof(*w));
  if (w == NULL)
    return UV_ENOMEM;
  memset(w, 0, sizeof(*w));
  w->pool = pool;
  w->id = ++s->next_id;
  rc = uvpool__thread_start_locked(pool, &w->tid, pool->opts.stack_size,
                                   uvpool__worker_main, w);
  if (rc != 0) {
    uvpool__free(w);
    return rc;
  }
  w->next = s->workers;
  if (s->workers != NULL)
    s->workers->prev = w;
  s->workers = w;
  s->nworkers++;
  s->nidle++;
  s->nstarting++;
  if (s->nworkers > s->npeak)
    s->npeak = s->nworkers;
  /* Without a monitor, submit falls back to starting a worker whenever
   * tasks outnumber idle workers (see uvpool__supply_ensure_locked). */
  (void)uvpool__monitor_start_locked(pool);
  return 0;
}

int uvpool__supply_ensure_locked(uvpool_t *pool) {
  uvpool__supply_t *s = &pool->supply;
  int rc;
  if (s->nworkers >= pool->opts.max_workers ||
      (s->nworkers > 0 &&
       (uvpool__monitor_running(pool) || uvpool__runnable(pool) < s->nidle)))
    return 0;
  rc = uvpool__supply_spawn_locked(pool, 1);
  return s->nworkers > 0 ? 0 : rc;
}

/* ---- waking workers ----------------------------------------------------- */

void uvpool__supply_wake_locked(uvpool_t *pool) {
  uvpool__supply_t *s = &pool->supply;
  unsigned awake = s->nidle - s->nparked - s->nstarting;
  if (s->nparked > 0 && uvpool__runnable(pool) > awake) {
    atomic_store_explicit(&s->wake_pending, true, memory_order_relaxed);
    uv_cond_signal(&s->work_cv);
  }
}

/* With no worker left (the last one left after the submitter looked),
 * start one; if none can start, fail what is queued with that error
 * rather than strand it. With parked workers, wake one unless a spinning
 * worker will take the task: then the wake-up, if more is queued, is
 * handed on by the worker that takes a task (uvpool__supply_task_begin),
 * and its system call runs on a worker, not on the loop thread. With every
 * worker busy, the monitor watches. */
void uvpool__supply_kick_locked(uvpool_t *pool) {
  uvpool__supply_t *s = &pool->supply;
  if (s->nworkers == 0) {
    if (uvpool__runnable(pool) > 0 && pool->broken == 0 && !pool->forked) {
      int rc = uvpool__supply_spawn_locked(pool, 0);
      if (rc != 0)
        uvpool__pend_cancel_all(pool, rc);
    }
    return;
  }
  if (s->nspinning > 0)
    return;
  if (s->nparked > 0)
    uvpool__supply_wake_locked(pool);
  else
    uvpool__monitor_wake_locked(pool);
}

/* After a push on the inbox, without mu: makes sure a worker will take
 * the task, taking mu only when someone must be woken. The push is a
 * seq_cst read-modify-write, and so are the updates of nworkers, nparked
 * and the monitor's sleeping flag, each followed by a look at the inbox
 * (supply_leave, park, the monitor's sleep): either that thread sees the
 * task or this one sees it gone, parked or asleep. A spinning worker, or
 * one already signalled, takes the task anyway; a running one looks when
 * its task returns. A starting worker does not count: it may stay in
 * thread_init for long. */
void uvpool__supply_kick(uvpool_t *pool) {
  uvpool__supply_t *s = &pool->supply;
  if (atomic_load(&s->nworkers) != 0) {
    if (atomic_load(&s->nspinning) != 0)
      return;
    if (atomic_load(&s->nparked) != 0
            ? atomic_load_explicit(&s->wake_pending, memory_order_relaxed)
            : !uvpool__monitor_sleeping(pool))
      return;
  }
  uv_mutex_lock(&pool->mu);
  uvpool__supply_kick_locked(pool);
  uv_mutex_unlock(&pool->mu);
  uvpool__watchers_run();
}

void uvpool__supply_broadcast_locked(uvpool_t *pool) {
  uv_cond_broadcast(&pool->supply.work_cv);
}

/* ---- a worker's life ---------------------------------------------------- */

void uvpool__supply_ready_locked(uvpool_t *pool) { pool->supply.nstarting--; }

void uvpool__supply_task_begin_locked(uvpool_t *pool, uvpool__worker_t *w,
                                      uvpool_future_t *f) {
  uvpool__supply_t *s = &pool->supply;
  s->nidle--;
  s->nrunning++;
  w->current = f;
  w->started++;
  /* Hand the wake-up on: a spinning or starting worker takes one task, and
   * this may have been it. The inbox is drained only if there are parked
   * workers to weigh it against (uvpool__supply_wake_locked). */
  if (atomic_load_explicit(&pool->nqueued, memory_order_relaxed) != 0 ||
      !uvpool__inbox_empty(pool))
    uvpool__supply_kick_locked(pool);
}

void uvpool__supply_task_end_locked(uvpool_t *pool, uvpool__worker_t *w) {
  uvpool__supply_t *s = &pool->supply;
  w->current = NULL;
  s->nrunning--;
  s->nidle++; /* before it is published: see the top of the file */
}

/* Under mu: thread_exit runs without mu, and the worker is busy, not idle,
 * meanwhile: tasks queued then find it counted but unavailable. */
void uvpool__supply_busy_locked(uvpool_t *pool, bool busy) {
  if (busy)
    pool->supply.nidle--;
  else
    pool->supply.nidle++;
}

bool uvpool__supply_cancel_running_locked(uvpool_t *pool) {
  uvpool__supply_t *s = &pool->supply;
  s->cancel_running = true;
  for (uvpool__worker_t *w = s->workers; w != NULL; w = w->next)
    if (w->current != NULL)
      atomic_fetch_or_explicit(&w->current->state, UVPOOL__F_CANCEL_REQ,
                               memory_order_relaxed);
  return true;
}

bool uvpool__supply_cancelling_running(const uvpool_t *pool) {
  return pool->supply.cancel_running;
}

/* ---- idle workers: spin, then park -------------------------------------- */

/* A task waits in the run queue or the inbox: a look, not a drain. */
static bool work_ready(uvpool_t *pool) {
  return atomic_load_explicit(&pool->nqueued, memory_order_relaxed) != 0 ||
         !uvpool__inbox_empty(pool);
}

/* Spins up to spin_us without the lock, for a task to appear. One spinner
 * is enough to catch the next task; more would only take CPU from the
 * loop thread and from the workers that have work. */
static void spin_locked(uvpool_t *pool) {
  uvpool__supply_t *s = &pool->supply;
  uint64_t until;
  if (pool->opts.spin_us == 0 || s->nspinning > 0)
    return;
  s->nspinning++;
  uv_mutex_unlock(&pool->mu);
  until = uv_hrtime() + (uint64_t)pool->opts.spin_us * 1000u;
  (void)uvpool__spin_until(pool, until, work_ready);
  uv_mutex_lock(&pool->mu);
  s->nspinning--;
}

/* Parks until signalled or the idle timeout. Returns false when this
 * worker should leave for being idle too long. */
static bool park_locked(uvpool_t *pool, uvpool__worker_t *w) {
  uvpool__supply_t *s = &pool->supply;
  uint64_t timeout = (uint64_t)pool->opts.idle_timeout_ms * 1000000u;
  uint64_t now = uv_hrtime();
  /* Workers already on their way out do not count toward min_workers. */
  bool reapable = s->nworkers - s->nleaving > pool->opts.min_workers;
  if (reapable && now - w->idle_since >= timeout) {
    s->nleaving++;
    w->idle_exit = true;
    return false;
  }
  s->nparked++;
  /* After counting itself parked, look at the inbox once more: a lock-free
   * submit that missed the count pushed before it (see supply_kick). */
  if (uvpool__inbox_empty(pool)) {
    if (reapable)
      uv_cond_timedwait(&s->work_cv, &pool->mu,
                        timeout - (now - w->idle_since));
    else
      uv_cond_wait(&s->work_cv, &pool->mu);
    atomic_store_explicit(&s->wake_pending, false, memory_order_relaxed);
  }
  s->nparked--;
  return true;
}

bool uvpool__supply_idle_locked(uvpool_t *pool, uvpool__worker_t *w) {
  if (!w->spun) {
    w->spun = true;
    w->idle_since = uv_hrtime();
    spin_locked(pool);
    return true;
  }
  return park_locked(pool, w);
}

/* ---- leaving ------------------------------------------------------------ */

static void unlink_worker(uvpool__supply_t *s, uvpool__worker_t *w) {
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    s->workers = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
}

/* The last thing a worker does with the pool: move itself to the zombie
 * list and tell whoever joins. The async send happens under mu, so the
 * loop cannot close the handle in between (it needs nworkers == 0, read
 * under mu). */
void uvpool__supply_leave_locked(uvpool_t *pool, uvpool__worker_t *w) {
  uvpool__supply_t *s = &pool->supply;
  s->nidle--;
  unlink_worker(s, w);
  w->next = s->zombies;
  s->zombies = w;
  s->nworkers--;
  if (w->idle_exit)
    s->nleaving--;
  /* Work queued while this worker ran thread_exit after an idle timeout
   * found it counted but unavailable: hand the work to a new thread, also
   * while closing or exiting (that work was accepted and must run). If no
   * thread can be started and none is left, the work fails with that
   * error rather than wait forever. */
  if (pool->broken == 0 && !pool->forked && uvpool__runnable(pool) > s->nidle) {
    int rc = uvpool__supply_spawn_locked(pool, 0);
    if (rc != 0 && s->nworkers == 0)
      uvpool__pend_cancel_all(pool, rc);
  }
  uvpool__exit_changed_locked(pool);
  if (!atomic_load(&pool->exiting) && !pool->forked)
    uv_async_send(&pool->async);
}

bool uvpool__supply_reap_due_locked(const uvpool_t *pool) {
  return pool->supply.zombies != NULL;
}

/* Joins the workers that left. Not under mu: a zombie may still be
 * returning from its thread function after its last unlock. */
void uvpool__supply_reap(uvpool_t *pool) {
  uvpool__worker_t *z;
  uv_mutex_lock(&pool->mu);
  z = pool->supply.zombies;
  pool->supply.zombies = NULL;
  uv_mutex_unlock(&pool->mu);
  while (z != NULL) {
    uvpool__worker_t *next = z->next;
    uvpool__thread_join(pool, &z->tid);
    uvpool__free(z);
    z = next;
  }
}

/* ---- what the monitor asks ---------------------------------------------- */

void uvpool__supply_note_started_locked(uvpool_t *pool) {
  for (uvpool__worker_t *w = pool->supply.workers; w != NULL; w = w->next) {
    w->mon_seen = w->started;
    w->mon_stuck = 0;
  }
}

/* Whether w still runs the task it was seen stuck on this tick. */
static bool still_stuck(const uvpool__worker_t *w) {
  return w->current != NULL && w->started == w->mon_seen;
}

size_t uvpool__supply_stuck_locked(uvpool_t *pool, bool saturated, bool peek,
                                   bool (*asleep)(int tid)) {
  /* One read costs some microseconds; past this many, as if asleep. */
  enum { PEEK_MAX = 16 };
  int tids[PEEK_MAX];
  unsigned ids[PEEK_MAX];
  bool sleeps[PEEK_MAX];
  size_t n = 0, help = 0;
  for (uvpool__worker_t *w = pool->supply.workers; w != NULL; w = w->next) {
    w->mon_help = false;
    if (w->current == NULL || w->started != w->mon_seen) {
      w->mon_stuck = 0;
    } else if (++w->mon_stuck < UVPOOL__RUNNING_GRACE_TICKS && saturated &&
               peek && n < PEEK_MAX) {
      ids[n] = w->id;
      tids[n++] = w->ktid;
    } else {
      w->mon_help = true; /* past the grace, PEEK_MAX, or not peeking */
      help++;
    }
    w->mon_seen = w->started;
  }
  if (n == 0)
    return help;
  uv_mutex_unlock(&pool->mu);
  for (size_t i = 0; i < n; i++)
    sleeps[i] = asleep(tids[i]);
  uv_mutex_lock(&pool->mu);
  /* While mu was dropped, workers may have finished their tasks, left or
   * started: count only those still stuck now. */
  help = 0;
  for (uvpool__worker_t *w = pool->supply.workers; w != NULL; w = w->next) {
    for (size_t i = 0; i < n && !w->mon_help; i++)
      w->mon_help = ids[i] == w->id && sleeps[i];
    if (w->mon_help && still_stuck(w))
      help++;
  }
  return help;
}

bool uvpool__supply_add_locked(uvpool_t *pool, size_t n) {
  uvpool__supply_t *s = &pool->supply;
  /* Workers already on their way (starting, spinning, or parked and
   * signalled) take tasks before a new one could: they count first. */
  size_t pending = s->wake_pending ? 1 : 0;
  size_t coming = s->nstarting + s->nspinning + pending;
  size_t parked = s->nparked;
  size_t wake = parked > pending ? parked - pending : 0;
  unsigned before = s->nworkers;
  n = n > coming ? n - coming : 0;
  if (wake > n)
    wake = n;
  for (size_t i = 0; i < wake; i++)
    uv_cond_signal(&s->work_cv);
  if (wake > 0)
    atomic_store_explicit(&s->wake_pending, true, memory_order_relaxed);
  for (n -= wake; n > 0 && s->nworkers < pool->opts.max_workers; n--)
    if (uvpool__supply_spawn_locked(pool, 0) != 0)
      break; /* tried again next tick */
  return wake > 0 || s->nworkers != before;
}

bool uvpool__supply_backlog_locked(const uvpool_t *pool) {
  const uvpool__supply_t *s = &pool->supply;
  return (pool->nqueued > 0 || !uvpool__inbox_empty(pool)) &&
         s->nspinning == 0 && s->nparked == 0;
}

/* ---- exit and fork ------------------------------------------------------ */

unsigned uvpool__supply_others_locked(const uvpool_t *pool,
                                      const uvpool__worker_t *me,
                                      unsigned *running) {
  const uvpool__supply_t *s = &pool->supply;
  unsigned self = me != NULL && me->pool == pool;
  unsigned self_running = self && me->current != NULL;
  *running = s->nrunning - self_running;
  return s->nworkers - self;
}

bool uvpool__supply_publishing(const uvpool_t *pool) {
  for (uvpool__worker_t *w = pool->supply.workers; w != NULL; w = w->next)
    if (atomic_load_explicit(&w->publishing, memory_order_acquire))
      return true;
  return false;
}

static void free_workers(uvpool__worker_t *w) {
  while (w != NULL) {
    uvpool__worker_t *next = w->next;
    uvpool__free(w);
    w = next;
  }
}

/* In a fork child: only the forking thread exists. What the workers ran
 * is settled cancelled, what they kept for a batch goes to the loop, and
 * the counts start from nothing. */
void uvpool__supply_fork_child(uvpool_t *pool) {
  uvpool__supply_t *s = &pool->supply;
  for (uvpool__worker_t *w = s->workers; w != NULL; w = w->next) {
    if (w->current != NULL)
      uvpool__settle_task_locked(pool, w->current, UVPOOL_CANCELLED,
                                 UV_ECANCELED, NULL);
    if (w->quiet != NULL)
      uvpool__done_push_chain(pool, w->quiet, w->quiet_last);
  }
  free_workers(s->workers);
  free_workers(s->zombies);
  s->workers = s->zombies = NULL;
  s->nidle = s->nrunning = s->nleaving = s->nstarting = 0;
  atomic_store(&s->nworkers, 0);
  atomic_store(&s->nparked, 0);
  atomic_store(&s->nspinning, 0);
  atomic_store(&s->wake_pending, false);
  /* Nobody waits on it in the child: a fresh one is safe to reuse. */
  uv_cond_init(&s->work_cv);
}
