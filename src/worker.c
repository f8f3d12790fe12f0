/* A worker thread: takes tasks, runs them, publishes their outcomes, and
 * asks the supply (supply.c) what to do when it finds nothing to run.
 * Lazy start, one at a time; joined by the loop thread (or by the exit
 * handler), never detached. */
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

/* The publish window (see uvpool__supply_quiesce): pubseq is odd from
 * the moment, under mu, a worker holds an outcome until it touched the
 * outcome's pool for the last time. */
static void pub_begin(uvpool__worker_t *w) {
  uint32_t seq = atomic_load_explicit(&w->pubseq, memory_order_relaxed);
  atomic_store_explicit(&w->pubseq, seq + 1, memory_order_relaxed);
}

static void pub_end(uvpool__worker_t *w) {
  uint32_t seq = atomic_load_explicit(&w->pubseq, memory_order_relaxed);
  atomic_store_explicit(&w->pubseq, seq + 1, memory_order_release);
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
 * for work in vain, so nothing waits on a batch while the worker idles.
 * A batch holds futures of one pool only, the pool whose task the worker
 * runs next: while that task runs, it keeps its loop alive anyway, and
 * another pool of the group (whose loop may want to return, or to close)
 * never waits for a task that is not its own. quiet_flush pushes a batch
 * that is not empty. */
static void quiet_flush(uvpool__worker_t *w) {
  uvpool__done_push_chain(w->quiet_pool, w->quiet, w->quiet_last);
  w->quiet = w->quiet_last = NULL;
  w->quiet_pool = NULL;
  w->nquiet = 0;
}

static void quiet_keep(uvpool_t *pool, uvpool__worker_t *w,
                       uvpool_future_t *f) {
  w->quiet_pool = pool;
  f->next = w->quiet;
  if (w->quiet == NULL)
    w->quiet_last = f;
  w->quiet = f;
  if (++w->nquiet == UVPOOL__QUIET_MAX)
    quiet_flush(w);
}

/* Publishes o outside mu: waiters wake and the loop is told (or, for a
 * future nothing observes, the batch grows), without making the next
 * submit or pop wait for it. next: the pool whose task runs next, or NULL
 * (none): a batch of another pool is pushed now. So a batch left after a
 * publish is next's, and o, when it comes, is a task of next: it joins
 * that batch. And a worker with no outcome to publish has no batch. */
static void publish(uvpool__worker_t *w, outcome_t *o, const uvpool_t *next) {
  uvpool_t *pool;
  if (o->f == NULL)
    return;
  pool = o->f->pool;
  if (uvpool__settle_ran(pool, o->f, o->st, o->rc, o->result))
    quiet_keep(pool, w, o->f);
  if (w->quiet != NULL && w->quiet_pool != next)
    quiet_flush(w);
  o->f = NULL;
  pub_end(w);
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

/* Called and returns with mu held. Publishes the previous outcome once mu
 * is released, runs f, and leaves f's outcome in *o: it is published
 * after the next pop, so a busy worker takes one lock per task. */
static void run_task(uvpool__group_t *g, uvpool__worker_t *w,
                     uvpool_future_t *f, outcome_t *o) {
  uvpool_t *pool = f->pool;
  uvpool_work_cb work = f->u.work;
  uvpool__ext_t *e = uvpool__ext_of(f);
  void *arg = e != NULL ? e->arg : f->arg;
  unsigned lane = e != NULL ? e->lane : 0;
  void *result = NULL;
  int rc;

  uvpool__supply_task_begin_locked(g, w, f);
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
    /* Before the flag clears: see uvpool_future_arg. */
    f->arg = e->arg;
    atomic_fetch_and_explicit(&f->state, ~UVPOOL__F_EXT, memory_order_release);
    uvpool__free(e);
  }
  uv_mutex_unlock(&g->mu);
  publish(w, o, pool);
  /* Some tasks are timed, for the supply's hand-on rule: two clock reads
   * on every task would cost empty tasks a good share of their time. */
  uint64_t t0 = w->started % UVPOOL__TASK_SAMPLE == 0 ? uv_hrtime() : 0;
  rc = work(arg, &result);
  uint64_t ran = t0 != 0 ? uv_hrtime() - t0 + 1 : 0;
  uv_mutex_lock(&g->mu);

  uvpool__supply_task_end_locked(g, w, ran);
  uvpool__lane_done(g, lane);
  account(pool, f, rc, result, o);
  pub_begin(w);
  uvpool__exit_changed_locked(g);
}

/* Publishes what this worker holds (an outcome, and with it its batch of
 * quiet futures: see publish) with mu released; returns whether there
 * was any. */
static bool publish_held_locked(uvpool__group_t *g, uvpool__worker_t *w,
                                outcome_t *o) {
  if (o->f != NULL) {
    uv_mutex_unlock(&g->mu);
    publish(w, o, NULL);
    uv_mutex_lock(&g->mu);
    return true;
  }
  return false;
}

/* Coverage: the group stops for process exit only in child processes,
 * whose counters gcov writes earlier (see exit.c). */
static void worker_loop(uvpool__group_t *g, uvpool__worker_t *w) {
  outcome_t o = {NULL, UVPOOL_PENDING, 0, NULL};
  w->spun = false;
  w->idle_since = uv_hrtime();
  for (;;) {
    uvpool_future_t *f = g->broken ? NULL : uvpool__pend_pop(g);
    if (f != NULL) {
      run_task(g, w, f, &o);
      w->spun = false;
      continue;
    }
    /* Nothing to run next: publish, then look again, before idling. */
    if (publish_held_locked(g, w, &o))
      continue;
    if (uvpool__group_stopping(g))
      return;
    if (!uvpool__supply_idle_locked(g, w))
      return; /* idle too long */
  }
}

/* A thread_init failure breaks the group: what is queued fails with its
 * code and later submits return it. */
static void break_group_locked(uvpool__group_t *g, int rc) {
  if (g->broken == 0)
    g->broken = rc;
  uvpool__inbox_close(g);
  uvpool__pend_cancel_all(g, g->broken);
  uvpool__supply_broadcast_locked(g);
}

void uvpool__worker_main(void *arg) {
  uvpool__worker_t *w = arg;
  uvpool__group_t *g = w->g;
  int rc = 0;

  uvpool__hook(UVPOOL__HOOK_WORKER_START, g->root);
  tls_worker = w;
  w->ktid = (int)syscall(SYS_gettid);
  {
    char suffix[12];
    snprintf(suffix, sizeof(suffix), "-%u", w->id);
    uvpool__thread_name(g, suffix);
  }
  if (g->opts.thread_init != NULL) {
    rc = uvpool__uv_code(g->opts.thread_init(g->opts.thread_data));
  }
  uv_mutex_lock(&g->mu);
  uvpool__supply_ready_locked(g, w);
  if (rc != 0) {
    break_group_locked(g, rc);
  } else {
    worker_loop(g, w);
    uvpool__supply_stop_looking_locked(g, w);
    if (g->opts.thread_exit != NULL) {
      uvpool__supply_busy_locked(g, true);
      uv_mutex_unlock(&g->mu);
      g->opts.thread_exit(g->opts.thread_data);
      uv_mutex_lock(&g->mu);
      uvpool__supply_busy_locked(g, false);
    }
  }
  uvpool__supply_leave_locked(g, w);
  uv_mutex_unlock(&g->mu);
  uvpool__watchers_run();
}
