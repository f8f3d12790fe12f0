/* Worker threads: lazy start, one at a time; spin-then-park when idle;
 * exit after idle_timeout_ms above min_workers; joined by the loop thread
 * (or by the exit handler), never detached.
 *
 * Counting rule that prevents spawning a thread where an idle one would
 * do: nidle counts workers that are starting, spinning or parked. A
 * worker finishing a task counts itself idle under mu *before* it settles
 * the future, so a thread that waits on the future and then submits sees
 * the idle worker (the "idle reuse race"). Submit spawns only while more
 * tasks are queued than nidle can absorb. */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The worker this thread is, or NULL: lets the exit handler avoid waiting
 * for its own thread and lets work ask whether it was cancelled. */
static _Thread_local uvpool__worker_t *tls_worker;

uvpool__worker_t *uvpool__current_worker(void) { return tls_worker; }

void uvpool__forget_worker(void) { tls_worker = NULL; }

int uvpool_cancel_requested(void) {
  /* current is written by this very thread, so it is read without mu. */
  uvpool__worker_t *w = tls_worker;
  uvpool_future_t *f = w != NULL ? w->current : NULL;
  return f != NULL && (atomic_load_explicit(&f->state, memory_order_relaxed) &
                       UVPOOL__F_CANCEL_REQ) != 0;
}

void uvpool__cancel_running_locked(uvpool_t *pool) {
  pool->cancel_running = true;
  for (uvpool__worker_t *w = pool->workers; w != NULL; w = w->next)
    if (w->current != NULL)
      atomic_fetch_or_explicit(&w->current->state, UVPOOL__F_CANCEL_REQ,
                               memory_order_relaxed);
}

/* Coverage: the exiting case is taken only during process exit, in
 * child processes whose counters gcov writes earlier (see exit.c). */
static bool shutting_down(const uvpool_t *pool) {
  return pool->closing || atomic_load(&pool->exiting) || pool->broken != 0;
}

/* Signals a parked worker if the queue holds more tasks than the workers
 * that will look at it anyway (starting or spinning). */
void uvpool__wake_locked(uvpool_t *pool) {
  unsigned awake = pool->nidle - pool->nparked - pool->nstarting;
  if (pool->nparked > 0 && uvpool__runnable(pool) > awake) {
    atomic_store_explicit(&pool->wake_pending, true, memory_order_relaxed);
    uv_cond_signal(&pool->work_cv);
  }
}

/* Under mu, after queueing a task: makes sure a worker will take it.
 * With no worker left (the last one left after the submitter looked),
 * start one; if none can start, fail what is queued with that error
 * rather than strand it. With parked workers, wake one unless a spinning
 * worker will take it: then the wake-up, if more is queued, is handed on
 * by the worker that takes a task (run_task), and its system call runs
 * on a worker, not on the loop thread. With every worker busy, the
 * monitor watches. */
void uvpool__kick_locked(uvpool_t *pool) {
  if (pool->nworkers == 0) {
    if (uvpool__runnable(pool) > 0 && pool->broken == 0 && !pool->forked) {
      int rc = uvpool__spawn_locked(pool, 0);
      if (rc != 0)
        uvpool__pend_cancel_all(pool, rc);
    }
    return;
  }
  if (pool->nspinning > 0)
    return;
  if (pool->nparked > 0)
    uvpool__wake_locked(pool);
  else
    uvpool__monitor_wake_locked(pool);
}

/* After a push on the inbox, without mu: makes sure a worker will take
 * the task, taking mu only when someone must be woken. The push is a
 * seq_cst read-modify-write, and so are the updates of nworkers, nparked
 * and mon_sleeping, each followed by a look at the inbox
 * (worker_leave_locked, park_locked, monitor_main): either that thread
 * sees the task or this one sees it gone, parked or asleep. A spinning
 * worker, or one already signalled, takes the task anyway; a running one
 * looks when its task returns. A starting worker does not count: it may
 * stay in thread_init for long. */
void uvpool__kick(uvpool_t *pool) {
  if (atomic_load(&pool->nworkers) != 0) {
    if (atomic_load(&pool->nspinning) != 0)
      return;
    if (atomic_load(&pool->nparked) != 0
            ? atomic_load_explicit(&pool->wake_pending, memory_order_relaxed)
            : !atomic_load(&pool->mon_sleeping))
      return;
  }
  uv_mutex_lock(&pool->mu);
  uvpool__kick_locked(pool);
  uv_mutex_unlock(&pool->mu);
  uvpool__watchers_run();
}

/* A finished task whose settlement is still to be published. */
typedef struct {
  uvpool_future_t *f;
  uvpool_state_t st;
  int rc;
  void *result;
} outcome_t;

/* Futures that nothing can observe (fire and forget: no reference but
 * the pool's, no callback) need the loop only to be recycled. The worker
 * keeps up to UVPOOL__QUIET_MAX of them and pushes them on the done list
 * in one step: one contended exchange and at most one wake-up of the loop
 * per batch instead of per task. It pushes what it keeps before it looks
 * for work in vain, so nothing waits on a batch while the worker idles;
 * while it runs a long task, the loop is kept alive by that task anyway.
 * quiet_flush pushes a batch that is not empty. */
static void quiet_flush(uvpool_t *pool, uvpool__worker_t *w) {
  uvpool__done_push_chain(pool, w->quiet, w->quiet_last);
  w->quiet = w->quiet_last = NULL;
  w->nquiet = 0;
}

static void quiet_keep(uvpool_t *pool, uvpool__worker_t *w,
                       uvpool_future_t *f) {
  f->next = w->quiet;
  if (w->quiet == NULL)
    w->quiet_last = f;
  w->quiet = f;
  if (++w->nquiet == UVPOOL__QUIET_MAX)
    quiet_flush(pool, w);
}

/* Publishes o outside mu: waiters wake and the loop is told (or, for a
 * future nothing observes, the batch grows), without making the next
 * submit or pop wait for it. */
static void publish(uvpool_t *pool, uvpool__worker_t *w, outcome_t *o) {
  if (o->f == NULL)
    return;
  if (uvpool__settle_ran(pool, o->f, o->st, o->rc, o->result))
    quiet_keep(pool, w, o->f);
  o->f = NULL;
  atomic_store_explicit(&w->publishing, false, memory_order_release);
  /* Combinations and dependent tasks that waited for f: see combine.c. */
  uvpool__watchers_run();
}

/* Under mu: the counters of a finished task, and its outcome. */
static void account(uvpool_t *pool, uvpool_future_t *f, int rc, void *result,
                    outcome_t *o) {
  uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
  rc = uvpool__uv_code(rc); /* a positive errno, as the header says */
  if (rc == 0)
    o->st = UVPOOL_DONE;
  else if (rc == UV_ECANCELED && (s & UVPOOL__F_CANCEL_REQ))
    o->st = UVPOOL_CANCELLED;
  else
    o->st = UVPOOL_FAILED;
  uvpool__count_settled_locked(pool, o->st);
  o->f = f;
  o->rc = rc;
  o->result = result;
}

/* A task waits in the run queue or the inbox: a look, not a drain. */
static bool work_ready(uvpool_t *pool) {
  return atomic_load_explicit(&pool->nqueued, memory_order_relaxed) != 0 ||
         !uvpool__inbox_empty(pool);
}

/* Called and returns with mu held. Publishes the previous outcome once mu
 * is released, runs f, and leaves f's outcome in *o: it is published
 * after the next pop, so a busy worker takes one lock per task. */
static void run_task(uvpool_t *pool, uvpool__worker_t *w, uvpool_future_t *f,
                     outcome_t *o) {
  uvpool_work_cb work = f->u.work;
  uvpool__ext_t *e = uvpool__ext_of(f);
  void *arg = e != NULL ? e->arg : f->v.arg;
  unsigned lane = e != NULL ? e->lane : 0;
  void *result = NULL;
  int rc;

  pool->nidle--;
  pool->nrunning++;
  w->current = f;
  w->started++;
  /* Hand the wake-up on: a spinning or starting worker takes one task,
   * and this may have been it. The inbox is drained only if there are
   * parked workers to weigh it against (uvpool__wake_locked). */
  if (work_ready(pool))
    uvpool__kick_locked(pool);
  /* PENDING is 0, so or-ing keeps the bits other threads set; alone with
   * f, no other thread sets any. A close or exit that asked running tasks
   * to stop asks this one too. */
  uint32_t running =
      UVPOOL_RUNNING | (pool->cancel_running ? UVPOOL__F_CANCEL_REQ : 0u);
  if (e == NULL && uvpool__pool_ref_only(f))
    atomic_store_explicit(
        &f->state,
        atomic_load_explicit(&f->state, memory_order_relaxed) | running,
        memory_order_relaxed);
  else
    atomic_fetch_or_explicit(&f->state, running, memory_order_relaxed);
  if (e != NULL) {
    atomic_fetch_and_explicit(&f->state, ~UVPOOL__F_EXT, memory_order_relaxed);
    uvpool__free(e);
  }
  uv_mutex_unlock(&pool->mu);
  publish(pool, w, o);
  rc = work(arg, &result);
  uv_mutex_lock(&pool->mu);

  w->current = NULL;
  pool->nrunning--;
  uvpool__lane_done(pool, lane);
  pool->nidle++; /* before it is published: see the counting rule above */
  account(pool, f, rc, result, o);
  atomic_store_explicit(&w->publishing, true, memory_order_relaxed);
  if (atomic_load(&pool->exiting))
    uv_cond_broadcast(&pool->drain_cv);
}

/* Spins up to spin_us without the lock, for a task to appear. Returns with
 * mu held. */
static void spin_locked(uvpool_t *pool) {
  uint64_t until;
  /* One spinner is enough to catch the next task; more would only take
   * CPU from the loop thread and from the workers that have work. */
  if (pool->opts.spin_us == 0 || pool->nspinning > 0)
    return;
  pool->nspinning++;
  uv_mutex_unlock(&pool->mu);
  until = uv_hrtime() + (uint64_t)pool->opts.spin_us * 1000u;
  (void)uvpool__spin_until(pool, until, work_ready);
  uv_mutex_lock(&pool->mu);
  pool->nspinning--;
}

/* Parks until signalled or the idle timeout. Returns false when this
 * worker should exit for being idle too long. */
static bool park_locked(uvpool_t *pool, uint64_t *idle_since) {
  uint64_t timeout = (uint64_t)pool->opts.idle_timeout_ms * 1000000u;
  uint64_t now = uv_hrtime();
  /* Workers already on their way out do not count toward min_workers. */
  bool reapable = pool->nworkers - pool->nleaving > pool->opts.min_workers;
  if (reapable && now - *idle_since >= timeout) {
    pool->nleaving++;
    return false;
  }
  pool->nparked++;
  /* After counting itself parked, look at the inbox once more: a lock-free
   * submit that missed the count pushed before it (see uvpool__kick). */
  if (uvpool__inbox_empty(pool)) {
    if (reapable)
      uv_cond_timedwait(&pool->work_cv, &pool->mu,
                        timeout - (now - *idle_since));
    else
      uv_cond_wait(&pool->work_cv, &pool->mu);
    atomic_store_explicit(&pool->wake_pending, false, memory_order_relaxed);
  }
  pool->nparked--;
  return true;
}

static void worker_loop(uvpool_t *pool, uvpool__worker_t *w) {
  uint64_t idle_since = uv_hrtime();
  bool spun = false;
  outcome_t o = {NULL, UVPOOL_PENDING, 0, NULL};
  for (;;) {
    uvpool_future_t *f = pool->broken ? NULL : uvpool__pend_pop(pool);
    if (f != NULL) {
      run_task(pool, w, f, &o);
      spun = false;
      continue;
    }
    if (o.f != NULL) { /* nothing to run next: publish, then look again */
      uv_mutex_unlock(&pool->mu);
      publish(pool, w, &o);
      uv_mutex_lock(&pool->mu);
      continue;
    }
    if (w->quiet != NULL) { /* and what it kept, before it idles */
      atomic_store_explicit(&w->publishing, true, memory_order_relaxed);
      uv_mutex_unlock(&pool->mu);
      quiet_flush(pool, w);
      atomic_store_explicit(&w->publishing, false, memory_order_release);
      uv_mutex_lock(&pool->mu);
      continue;
    }
    if (shutting_down(pool) || pool->forked)
      return;
    if (!spun) {
      spun = true;
      idle_since = uv_hrtime();
      spin_locked(pool);
      continue;
    }
    if (!park_locked(pool, &idle_since)) {
      w->idle_exit = true;
      return;
    }
  }
}

static void set_thread_name(const uvpool_t *pool, unsigned id) {
  char name[16];
  char num[12];
  int n = snprintf(num, sizeof(num), "-%u", id);
  int keep = (int)sizeof(name) - 1 - n;
  snprintf(name, sizeof(name), "%.*s%s", keep, pool->name, num);
  pthread_setname_np(pthread_self(), name);
}

static void worker_unlink(uvpool_t *pool, uvpool__worker_t *w) {
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    pool->workers = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
}

/* Under mu. The last thing a worker does with the pool: move itself to the
 * zombie list and tell whoever joins. The async send happens under mu, so
 * the loop cannot close the handle in between (it needs nworkers == 0,
 * read under mu). */
static void worker_leave_locked(uvpool_t *pool, uvpool__worker_t *w) {
  worker_unlink(pool, w);
  w->next = pool->zombies;
  pool->zombies = w;
  pool->nworkers--;
  if (w->idle_exit)
    pool->nleaving--;
  /* Work queued while this worker ran thread_exit after an idle timeout
   * found it counted but unavailable: hand the work to a new thread, also
   * while closing or exiting (that work was accepted and must run). If
   * no thread can be started and none is left, the work fails with that
   * error rather than wait forever. */
  if (pool->broken == 0 && !pool->forked &&
      uvpool__runnable(pool) > pool->nidle) {
    int rc = uvpool__spawn_locked(pool, 0);
    if (rc != 0 && pool->nworkers == 0)
      uvpool__pend_cancel_all(pool, rc);
  }
  uv_cond_broadcast(&pool->drain_cv);
  if (!atomic_load(&pool->exiting) && !pool->forked)
    uv_async_send(&pool->async);
}

/* A thread_init failure breaks the pool: what is queued fails with its
 * code and later submits return it. */
static void break_pool_locked(uvpool_t *pool, int rc) {
  if (pool->broken == 0)
    pool->broken = rc;
  uvpool__inbox_close(pool);
  uvpool__pend_cancel_all(pool, pool->broken);
  uv_cond_broadcast(&pool->work_cv);
}

static void worker_main(void *arg) {
  uvpool__worker_t *w = arg;
  uvpool_t *pool = w->pool;
  int rc = 0;

  uvpool__hook(UVPOOL__HOOK_WORKER_START, pool);
  tls_worker = w;
  w->ktid = (int)syscall(SYS_gettid);
  set_thread_name(pool, w->id);
  if (pool->opts.thread_init != NULL) {
    rc = uvpool__uv_code(pool->opts.thread_init(pool->opts.thread_data));
  }
  uv_mutex_lock(&pool->mu);
  pool->nstarting--;
  if (rc != 0) {
    break_pool_locked(pool, rc);
  } else {
    worker_loop(pool, w);
    if (pool->opts.thread_exit != NULL) {
      pool->nidle--;
      uv_mutex_unlock(&pool->mu);
      pool->opts.thread_exit(pool->opts.thread_data);
      uv_mutex_lock(&pool->mu);
      pool->nidle++;
    }
  }
  pool->nidle--;
  worker_leave_locked(pool, w);
  uv_mutex_unlock(&pool->mu);
  uvpool__watchers_run();
}

/* Under mu. Whether one more worker is wanted: the workers started or
 * starting (less those leaving for idleness) must stay below the tasks
 * that run or wait for a worker (lane-parked ones do not), plus `incoming`
 * about to be queued, and below max_workers. A starting worker is supply
 * for every caller (submit, the monitor, a leaving worker, exit), however
 * long it takes to start, so none of them starts one more for a task it
 * will take. */
static bool worker_wanted_locked(uvpool_t *pool, size_t incoming) {
  size_t supply = pool->nworkers - pool->nleaving;
  size_t demand = pool->nrunning + uvpool__runnable_estimate(pool) + incoming;
  size_t alive = pool->nworkers;
  /* A worker that called exit() from its task never comes back for the
   * queue: it is neither supply nor counted against max_workers. */
  if (tls_worker != NULL && tls_worker->pool == pool &&
      tls_worker->current != NULL && atomic_load(&pool->exiting)) {
    supply--;
    alive--;
  }
  return alive < pool->opts.max_workers && supply < demand;
}

/* Under mu. Starts one worker if one is wanted (else returns 0); it counts
 * as idle until it takes a task. The thread blocks on mu until the caller
 * unlocks. */
int uvpool__spawn_locked(uvpool_t *pool, size_t incoming) {
  uvpool__worker_t *w;
  int rc;
  if (!worker_wanted_locked(pool, incoming))
    return 0;
  w = uvpool__malloc(sizeof(*w));
  if (w == NULL)
    return UV_ENOMEM;
  memset(w, 0, sizeof(*w));
  w->pool = pool;
  w->id = ++pool->next_id;
  rc = uvpool__thread_start_locked(pool, &w->tid, pool->opts.stack_size,
                                   worker_main, w);
  if (rc != 0) {
    uvpool__free(w);
    return rc;
  }
  w->next = pool->workers;
  if (pool->workers != NULL)
    pool->workers->prev = w;
  pool->workers = w;
  pool->nworkers++;
  pool->nidle++;
  pool->nstarting++;
  if (pool->nworkers > pool->npeak)
    pool->npeak = pool->nworkers;
  /* Without a monitor, submit falls back to starting a worker whenever
   * tasks outnumber idle workers (see ensure_worker_locked). */
  if (!pool->mon_running)
    (void)uvpool__monitor_start_locked(pool);
  return 0;
}

/* Joins the workers that left. Not under mu: a zombie may still be
 * returning from worker_main after its last unlock. */
void uvpool__reap(uvpool_t *pool) {
  uvpool__worker_t *z;
  uv_mutex_lock(&pool->mu);
  z = pool->zombies;
  pool->zombies = NULL;
  uv_mutex_unlock(&pool->mu);
  while (z != NULL) {
    uvpool__worker_t *next = z->next;
    uvpool__thread_join(pool, &z->tid);
    uvpool__free(z);
    z = next;
  }
}
