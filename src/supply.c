/* Worker supply: how many workers a group has, and what an idle one does.
 * Every rule that starts, wakes, spins, parks or retires a worker lives
 * here, and so do the counts those rules read (uvpool__supply_t); other
 * files change them only through these functions. The monitor thread
 * (monitor.c) only measures: it asks count_stuck and supply_add here.
 *
 * Counts, all under g->mu (the few that the lock-free submit reads are
 * atomics, written under mu):
 * - nworkers: started and not yet left (starting ones included);
 * - nidle: starting, spinning or parked, that is not running a task. A
 *   worker finishing a task counts itself idle before it publishes the
 *   outcome, so a thread that waits on the future and then submits finds
 *   it idle (the "idle reuse race");
 * - nstarting, nawake, nparked: the idle ones by what they do (nawake:
 *   after a task, or spinning, or woken, until they park or take a task:
 *   each looks at the queue first); nspinning: those of nawake that spin;
 * - nleaving: idle workers past their idle timeout, on their way out.
 *
 * Starting a worker (supply_spawn): only while the workers started or
 * starting, less those leaving, are fewer than the tasks that run or wait
 * for a worker (lane-parked ones do not), and fewer than max_workers. A
 * starting worker is supply for every caller (submit, the monitor, a
 * leaving worker, exit), however long it takes to start. Submit starts one
 * only when the group has none; the monitor adds the others (monitor.c).
 *
 * Waking (supply_kick): a task queued while a worker spins needs nothing;
 * while workers are parked, one is signalled, unless one already was; with
 * every worker busy, the monitor is woken to watch the queue.
 *
 * Idle workers spin only where it pays (below), then park. Parked workers
 * above min_workers leave after idle_timeout_ms.
 *
 * Spinning that pays for itself. A thread that sleeps for a wait pays a
 * wake-up in latency (and in CPU, on both sides: on a 2-vCPU VM a
 * cross-CPU wake-up costs about 12 us of CPU and 17 us of latency); one
 * that spins pays the wait in CPU. So each kind of wait (an idle worker's
 * for its next task; the loop thread's for the completion of work its
 * callbacks just submitted, deliver.c) keeps a predictor: a moving average
 * of the waits it saw and one of the wake-up latencies it paid. It spins
 * only while the predicted wait is below the predicted wake-up, for at
 * most twice the predicted wait, never beyond spin_us. A wait it did not
 * spin for is still measured (up to the kick that ended it, or the
 * completion that arrived), so a predictor that stopped spinning sees when
 * waits become short again. This is the rule of glibc's adaptive mutex and
 * of the Linux kernel's optimistic spinning (spin only while spinning
 * recently paid, for a bounded, estimated time); what changes is the
 * measure: the wait against the cost of the sleep it would replace, not a
 * fixed spin count.
 *
 * No completion waits for a spin: a worker whose last publish woke the
 * loop thread does not spin before it parks. The loop thread may have
 * been woken onto this very CPU (a cross-CPU wake-up often lands there);
 * a spin would then sit between the completion and its callback. The
 * completion itself is published before the worker looks for more work.
 *
 * The waste is bounded: spins that found nothing (misses) take at most
 * 1/8 of the time the workers were busy running and publishing tasks,
 * plus half of what the spins that found their task saved (a wake-up's
 * latency each), over a window of about a second, plus 0.2 ms so that an
 * idle pool can still learn. A spin that found its task cost less than the
 * park and wake-up it replaced: it is not waste. uvpool_stats reports
 * busy, spin and wasted spin time. */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

/* ---- spin predictors and the waste bound -------------------------------- */

#define SPIN_MIN_NS 2000u      /* the shortest spin worth starting */
#define WAKE_INIT_NS 20000u    /* a wake-up's latency, until one was seen */
#define WINDOW_NS 1000000000u  /* the waste bound's window */
#define WASTE_SLACK_NS 200000u /* misses allowed in a window regardless */

static uint64_t average(uint64_t avg, uint64_t x) {
  return avg - avg / 4 + x / 4;
}

void uvpool__spin_saw_wait(uvpool__spinpred_t *p, uint64_t ns) {
  p->wait_ns = average(p->wait_ns, ns);
}

void uvpool__spin_saw_wake(uvpool__spinpred_t *p, uint64_t ns) {
  p->wake_ns = p->wake_ns == 0 ? ns : average(p->wake_ns, ns);
}

/* Halves the window's sums once it is a second old: what spinning cost
 * over about the last second. */
static void budget_age(uvpool__spinbudget_t *b, uint64_t now) {
  uint64_t at = atomic_load_explicit(&b->window_at, memory_order_relaxed);
  if (now - at < WINDOW_NS)
    return;
  atomic_store_explicit(&b->window_at, now, memory_order_relaxed);
  atomic_store_explicit(
      &b->busy_ns, atomic_load_explicit(&b->busy_ns, memory_order_relaxed) / 2,
      memory_order_relaxed);
  atomic_store_explicit(
      &b->waste_ns,
      atomic_load_explicit(&b->waste_ns, memory_order_relaxed) / 2,
      memory_order_relaxed);
  atomic_store_explicit(
      &b->saved_ns,
      atomic_load_explicit(&b->saved_ns, memory_order_relaxed) / 2,
      memory_order_relaxed);
}

static bool budget_allows(uvpool__spinbudget_t *b) {
  uint64_t busy = atomic_load_explicit(&b->busy_ns, memory_order_relaxed);
  uint64_t saved = atomic_load_explicit(&b->saved_ns, memory_order_relaxed);
  uint64_t waste = atomic_load_explicit(&b->waste_ns, memory_order_relaxed);
  return waste <= busy / 8 + saved / 2 + WASTE_SLACK_NS;
}

static void budget_busy(uvpool__spinbudget_t *b, uint64_t ns) {
  atomic_fetch_add_explicit(&b->busy_ns, ns, memory_order_relaxed);
  atomic_fetch_add_explicit(&b->busy_total, ns, memory_order_relaxed);
}

/* The workers' wake-up latency, as their last park measured it. */
static uint64_t worker_wake(uvpool__group_t *g) {
  uint64_t wake =
      atomic_load_explicit(&g->supply.wake_hint, memory_order_relaxed);
  return wake != 0 ? wake : WAKE_INIT_NS;
}

void uvpool__spin_spent(uvpool__group_t *g, uint64_t ns, bool hit) {
  uvpool__spinbudget_t *b = &g->supply.spent;
  atomic_fetch_add_explicit(&b->spin_total, ns, memory_order_relaxed);
  if (hit) {
    /* A hit replaced a park and a wake-up: about a wake-up's latency of
     * CPU, on the two threads together. */
    atomic_fetch_add_explicit(&b->saved_ns, worker_wake(g),
                              memory_order_relaxed);
    return;
  }
  atomic_fetch_add_explicit(&b->waste_ns, ns, memory_order_relaxed);
  atomic_fetch_add_explicit(&b->waste_total, ns, memory_order_relaxed);
}

/* The wake-up latency a predictor goes by: its own, else, until it saw
 * one, the workers'. */
static uint64_t wake_of(uvpool__group_t *g, const uvpool__spinpred_t *p) {
  return p->wake_ns != 0 ? p->wake_ns : worker_wake(g);
}

/* The spin is worth it while the predicted wait is below `worth` quarters
 * of a wake-up (`wake`): what the spin saves in CPU, as a wake-up's CPU
 * cost is about three quarters of its latency (see the top). It lasts
 * twice the predicted wait, for jitter, at most `most` quarters of a
 * wake-up and never beyond spin_us, and only while the waste bound
 * allows. worth 0: spin whatever the prediction. */
static uint64_t spin_len(uvpool__group_t *g, const uvpool__spinpred_t *p,
                         uint64_t wake, unsigned worth, unsigned most) {
  uvpool__spinbudget_t *b = &g->supply.spent;
  uint64_t cap = (uint64_t)g->opts.spin_us * 1000u;
  uint64_t len;
  if (cap == 0 || (worth != 0 && p->wait_ns * 4 >= wake * worth))
    return 0;
  budget_age(b, uv_hrtime());
  if (!budget_allows(b))
    return 0;
  len = worth != 0 ? 2 * p->wait_ns + SPIN_MIN_NS : UINT64_MAX;
  if (len > wake * most / 4)
    len = wake * most / 4;
  return len < cap ? len : cap;
}

uint64_t uvpool__spin_len_idle(uvpool__group_t *g, bool caught) {
  /* Caught by the loop thread spinning for it, its completion's follow-up
   * comes as soon as a callback submits it: spin, up to a wake-up. Else
   * the spin saves this worker's wake-up, if the wait is short. */
  uvpool__spinpred_t *p = &g->supply.idle;
  return caught ? spin_len(g, p, wake_of(g, p), 0, 4)
                : spin_len(g, p, wake_of(g, p), 3, 4);
}

uint64_t uvpool__spin_len_loop(uvpool_t *pool, bool probe) {
  /* A spin that catches the completion saves two wake-ups: the loop
   * thread's, and the worker's, which then spins for the follow-up instead
   * of parking. A probe (deliver.c) spins regardless, for two of the
   * workers' wake-ups: its completion comes after a worker woke for the
   * task, and the loop thread's own wake-ups, often measured while it was
   * still awake, may be far shorter. */
  uvpool__group_t *g = pool->g;
  uvpool__spinpred_t *p = &pool->wait.pred;
  return probe ? spin_len(g, p, worker_wake(g), 0, 8)
               : spin_len(g, p, wake_of(g, p), 5, 8);
}

/* Under mu: a busy period of w ended at now. */
static void busy_done(uvpool__group_t *g, uvpool__worker_t *w, uint64_t now) {
  budget_busy(&g->supply.spent, now - w->busy_since);
}

static void busy_begin(uvpool__worker_t *w, uint64_t now) {
  w->busy_since = now;
}

/* ---- counts ------------------------------------------------------------- */

int uvpool__supply_init(uvpool__group_t *g) {
  uvpool__supply_t *s = &g->supply;
  memset(s, 0, sizeof(*s));
  uvpool__list_init(&s->workers);
  uvpool__list_init(&s->zombies);
  return uv_cond_init(&s->work_cv);
}

void uvpool__supply_destroy(uvpool__group_t *g) {
  uv_cond_destroy(&g->supply.work_cv);
}

unsigned uvpool__supply_workers(const uvpool__group_t *g) {
  return atomic_load_explicit(&((uvpool__group_t *)g)->supply.nworkers,
                              memory_order_relaxed);
}

void uvpool__supply_stats_locked(const uvpool__group_t *g,
                                 uvpool_stats_t *out) {
  uvpool__supply_t *s = &((uvpool__group_t *)g)->supply;
  out->workers = s->nworkers;
  out->idle_workers = s->nidle;
  out->peak_workers = s->npeak;
  out->busy_ns =
      atomic_load_explicit(&s->spent.busy_total, memory_order_relaxed);
  out->spin_ns =
      atomic_load_explicit(&s->spent.spin_total, memory_order_relaxed);
  out->spin_wasted_ns =
      atomic_load_explicit(&s->spent.waste_total, memory_order_relaxed);
}

/* Under mu: the run queue's length with the inbox moved into it first. */
static size_t runnable_now(uvpool__group_t *g) {
  uvpool__inbox_drain_locked(g);
  return uvpool__runnable(g);
}

/* ---- starting workers --------------------------------------------------- */

/* Under mu: whether one more worker is wanted (see the top of the file),
 * with `incoming` tasks about to be queued. */
static bool wanted_locked(uvpool__group_t *g, size_t incoming) {
  uvpool__supply_t *s = &g->supply;
  uvpool__worker_t *me = uvpool__current_worker();
  size_t supply = s->nworkers - s->nleaving;
  size_t demand = s->nrunning + uvpool__runnable_estimate(g) + incoming;
  size_t alive = s->nworkers;
  /* A worker that called exit() from its task never comes back for the
   * queue: it is neither supply nor counted against max_workers. */
  if (me != NULL && me->g == g && me->current != NULL && g->exiting) {
    supply--;
    alive--;
  }
  return alive < g->opts.max_workers && supply < demand;
}

int uvpool__supply_spawn_locked(uvpool__group_t *g, size_t incoming) {
  uvpool__supply_t *s = &g->supply;
  uvpool__worker_t *w;
  int rc;
  if (!wanted_locked(g, incoming))
    return 0;
  w = uvpool__malloc(sizeof(*w));
  if (w == NULL)
    return UV_ENOMEM;
  memset(w, 0, sizeof(*w));
  w->g = g;
  w->id = ++s->next_id;
  rc = uvpool__thread_start_locked(g, &w->tid, g->opts.stack_size,
                                   uvpool__worker_main, w);
  if (rc != 0) {
    uvpool__free(w);
    return rc;
  }
  uvpool__list_push_front(&s->workers, &w->link);
  s->nworkers++;
  s->nidle++;
  s->nstarting++;
  if (s->nworkers > s->npeak)
    s->npeak = s->nworkers;
  /* Without a monitor, submit falls back to starting a worker whenever
   * tasks outnumber idle workers (see uvpool__supply_ensure_locked). */
  (void)uvpool__monitor_start_locked(g);
  return 0;
}

int uvpool__supply_ensure_locked(uvpool__group_t *g) {
  uvpool__supply_t *s = &g->supply;
  int rc;
  if (s->nworkers >= g->opts.max_workers ||
      (s->nworkers > 0 &&
       (uvpool__monitor_running(g) || runnable_now(g) < s->nidle)))
    return 0;
  rc = uvpool__supply_spawn_locked(g, 1);
  return s->nworkers > 0 ? 0 : rc;
}

/* ---- waking workers ----------------------------------------------------- */

/* Under mu: signals one parked worker, noting when for its predictor. */
static void signal_one_locked(uvpool__supply_t *s) {
  s->kick_at = uv_hrtime();
  atomic_store_explicit(&s->wake_pending, true, memory_order_relaxed);
  uv_cond_signal(&s->work_cv);
}

void uvpool__supply_wake_locked(uvpool__group_t *g) {
  uvpool__supply_t *s = &g->supply;
  if (s->nparked > 0 && runnable_now(g) > s->nawake)
    signal_one_locked(s);
}

/* With no worker left (the last one left after the submitter looked),
 * start one; if none can start, fail what is queued with that error
 * rather than strand it. With parked workers, wake one unless a spinning
 * worker will take the task: then the wake-up, if more is queued, is
 * handed on by the worker that takes a task (uvpool__supply_task_begin),
 * and its system call runs on a worker, not on the loop thread. With every
 * worker busy, the monitor watches. */
void uvpool__supply_kick_locked(uvpool__group_t *g) {
  uvpool__supply_t *s = &g->supply;
  if (s->nworkers == 0) {
    if (runnable_now(g) > 0 && g->broken == 0 && !g->forked) {
      int rc = uvpool__supply_spawn_locked(g, 0);
      if (rc != 0)
        uvpool__pend_cancel_all(g, rc);
    }
    return;
  }
  if (s->nawake > 0) /* it takes the task before it parks */
    return;
  if (s->nparked > 0)
    uvpool__supply_wake_locked(g);
  else
    uvpool__monitor_wake_locked(g);
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
bool uvpool__supply_kick(uvpool__group_t *g) {
  uvpool__supply_t *s = &g->supply;
  if (atomic_load(&s->nworkers) != 0) {
    if (atomic_load(&s->nawake) != 0)
      return false;
    if (atomic_load(&s->nparked) != 0
            ? atomic_load_explicit(&s->wake_pending, memory_order_relaxed)
            : !uvpool__monitor_sleeping(g))
      return true; /* a wake-up, or a busy worker, is on the way */
  }
  uv_mutex_lock(&g->mu);
  uvpool__supply_kick_locked(g);
  uv_mutex_unlock(&g->mu);
  uvpool__watchers_run();
  return true;
}

void uvpool__supply_broadcast_locked(uvpool__group_t *g) {
  uv_cond_broadcast(&g->supply.work_cv);
}

/* ---- a worker's life ---------------------------------------------------- */

/* Under mu: w starts, or stops, looking at the queue. seq_cst: the kick
 * that finds no awake worker pairs with it (see uvpool__supply_kick). */
static void set_awake(uvpool__supply_t *s, uvpool__worker_t *w, bool awake) {
  if (w->awake == awake)
    return;
  w->awake = awake;
  if (awake)
    atomic_fetch_add(&s->nawake, 1);
  else
    atomic_fetch_sub(&s->nawake, 1);
}

void uvpool__supply_ready_locked(uvpool__group_t *g, uvpool__worker_t *w) {
  g->supply.nstarting--;
  set_awake(&g->supply, w, true);
  busy_begin(w, uv_hrtime());
}

void uvpool__supply_stop_looking_locked(uvpool__group_t *g,
                                        uvpool__worker_t *w) {
  set_awake(&g->supply, w, false);
}

/* A task waits in the run queue or the inbox: a look, not a drain. */
static bool work_ready(void *arg) {
  uvpool__group_t *g = arg;
  return atomic_load_explicit(&g->q.nqueued, memory_order_relaxed) != 0 ||
         !uvpool__inbox_empty(g);
}

/* Under mu: a worker took a task while more wait. Hand the wake-up on (a
 * spinning or starting worker takes one task, and this may have been it;
 * with every worker busy, the monitor is asked to watch) only if the tasks
 * left would wait longer for this worker than for a woken thread, by the
 * run time of recent tasks: a burst of short tasks then runs on the worker
 * that is awake, at the cost of no wake-up, while blocking ones get more
 * workers at once. Should one task of a short burst block, the tasks
 * behind it get a worker at the next submit (whose kick wakes one) or when
 * it returns. */
static void hand_on_locked(uvpool__group_t *g) {
  uvpool__supply_t *s = &g->supply;
  uint64_t wake = s->idle.wake_ns != 0 ? s->idle.wake_ns : WAKE_INIT_NS;
  /* The run queue only: the inbox's count would read a cache line the
   * loop thread writes on every submit. What the inbox holds is weighed
   * at the next task, once drained into the run queue. */
  size_t queued = atomic_load_explicit(&g->q.nqueued, memory_order_relaxed);
  if ((queued != 0 ? queued : 1) * s->task_ns >= wake)
    uvpool__supply_kick_locked(g);
}

void uvpool__supply_task_begin_locked(uvpool__group_t *g, uvpool__worker_t *w,
                                      uvpool_future_t *f) {
  uvpool__supply_t *s = &g->supply;
  s->nidle--;
  s->nrunning++;
  set_awake(s, w, false);
  w->current = f;
  w->started++;
  f->pool->nrunning++;
  if (atomic_load_explicit(&g->q.nqueued, memory_order_relaxed) != 0 ||
      !uvpool__inbox_empty(g))
    hand_on_locked(g);
}

void uvpool__supply_task_end_locked(uvpool__group_t *g, uvpool__worker_t *w,
                                    uint64_t run_ns) {
  uvpool__supply_t *s = &g->supply;
  if (run_ns != 0)
    s->task_ns = average(s->task_ns, run_ns);
  w->current->pool->nrunning--;
  w->current = NULL;
  s->nrunning--;
  s->nidle++; /* before it is published: see the top of the file */
  /* A worker that takes the next task at once need not count as awake:
   * submits read nawake, and a write per task would bounce its cache line
   * between this worker and the loop thread. One that found the queue
   * empty here counts itself awake before it publishes, for the follow-up
   * its completion may bring; the others do so when they idle. */
  if (!work_ready(g))
    set_awake(s, w, true);
}

/* Under mu: thread_exit runs without mu, and the worker is busy, not idle,
 * meanwhile: tasks queued then find it counted but unavailable. */
void uvpool__supply_busy_locked(uvpool__group_t *g, bool busy) {
  if (busy)
    g->supply.nidle--;
  else
    g->supply.nidle++;
}

void uvpool__supply_cancel_running_locked(uvpool__group_t *g, uvpool_t *pool) {
  pool->cancel_running = true;
  UVPOOL__LIST_EACH(w, &g->supply.workers, uvpool__worker_t, link)
  if (w->current != NULL && w->current->pool == pool)
    atomic_fetch_or_explicit(&w->current->state, UVPOOL__F_CANCEL_REQ,
                             memory_order_relaxed);
}

/* ---- idle workers: spin, then park -------------------------------------- */

/* Spins without the lock for a task to appear, if the predictor says the
 * wait will be short. One spinner is enough to catch the next task; more
 * would only take CPU from the loop thread and the workers that have
 * work. */
static void spin_locked(uvpool__group_t *g, uvpool__worker_t *w, bool caught) {
  uvpool__supply_t *s = &g->supply;
  uint64_t len, end;
  bool hit;
  if (s->nspinning > 0)
    return;
  len = uvpool__spin_len_idle(g, caught);
  if (len == 0)
    return;
  s->nspinning++;
  uv_mutex_unlock(&g->mu);
  hit = uvpool__spin_until(g, w->idle_since + len, work_ready);
  end = uv_hrtime();
  uv_mutex_lock(&g->mu);
  s->nspinning--;
  uvpool__spin_spent(g, end - w->idle_since, hit);
  if (hit) {
    uvpool__spin_saw_wait(&s->idle, end - w->idle_since);
    busy_begin(w, end);
  }
}

/* Parks until signalled or the idle timeout. Returns false when this
 * worker should leave for being idle too long. A wake-up by a kick tells
 * the predictor how long the wait was (up to the kick) and what the
 * wake-up took. */
static bool park_locked(uvpool__group_t *g, uvpool__worker_t *w) {
  uvpool__supply_t *s = &g->supply;
  uint64_t timeout = (uint64_t)g->opts.idle_timeout_ms * 1000000u;
  uint64_t now = uv_hrtime();
  /* Workers already on their way out do not count toward min_workers. */
  bool reapable = s->nworkers - s->nleaving > g->opts.min_workers;
  if (reapable && now - w->idle_since >= timeout) {
    s->nleaving++;
    w->idle_exit = true;
    return false;
  }
  s->nparked++;
  w->parked = true;
  set_awake(s, w, false);
  /* After counting itself parked, look at the inbox once more: a lock-free
   * submit that missed the count pushed before it (see supply_kick). The
   * monitor keeps the idle timeout (uvpool__supply_retire_locked); without
   * one, the wait is timed. */
  if (uvpool__inbox_empty(g)) {
    if (reapable && !uvpool__monitor_running(g))
      uv_cond_timedwait(&s->work_cv, &g->mu, timeout - (now - w->idle_since));
    else
      uv_cond_wait(&s->work_cv, &g->mu);
    atomic_store_explicit(&s->wake_pending, false, memory_order_relaxed);
    now = uv_hrtime();
    if (s->kick_at > w->idle_since && s->kick_at <= now) {
      uvpool__spin_saw_wait(&s->idle, s->kick_at - w->idle_since);
      uvpool__spin_saw_wake(&s->idle, now - s->kick_at);
      atomic_store_explicit(&s->wake_hint, s->idle.wake_ns,
                            memory_order_relaxed);
    }
  }
  s->nparked--;
  w->parked = w->retire_woken = false;
  set_awake(s, w, true);
  busy_begin(w, now);
  return true;
}

bool uvpool__supply_idle_locked(uvpool__group_t *g, uvpool__worker_t *w) {
  if (!w->spun) {
    uint64_t now = uv_hrtime();
    w->spun = true;
    set_awake(&g->supply, w, true); /* then it looks: spin or park */
    w->idle_since = now;
    busy_done(g, w, now);
    uvpool__hook_unlocked(UVPOOL__HOOK_WORKER_IDLE, &g->mu, g->root);
    /* A completion that woke the loop thread: no spin (see the top). */
    bool caught = uvpool__caught_take();
    if (!uvpool__woke_loop_take())
      spin_locked(g, w, caught);
    return true;
  }
  return park_locked(g, w);
}

/* Workers that may retire: more than min_workers, less those leaving. */
static bool reapable_locked(const uvpool__group_t *g) {
  const uvpool__supply_t *s = &g->supply;
  return s->nworkers - s->nleaving > g->opts.min_workers;
}

uint64_t uvpool__supply_retire_due_locked(const uvpool__group_t *g) {
  uint64_t timeout = (uint64_t)g->opts.idle_timeout_ms * 1000000u;
  uint64_t due = UINT64_MAX;
  if (!reapable_locked(g))
    return 0;
  UVPOOL__LIST_EACH(w, &g->supply.workers, uvpool__worker_t, link)
  if (w->parked && !w->retire_woken && w->idle_since + timeout < due)
    due = w->idle_since + timeout;
  /* None parked yet: look again in a timeout's time. */
  return due != UINT64_MAX ? due : uv_hrtime() + timeout;
}

void uvpool__supply_retire_locked(uvpool__group_t *g, uint64_t now) {
  uint64_t timeout = (uint64_t)g->opts.idle_timeout_ms * 1000000u;
  bool due = false;
  if (!reapable_locked(g))
    return;
  UVPOOL__LIST_EACH(w, &g->supply.workers, uvpool__worker_t, link)
  if (w->parked && !w->retire_woken && now - w->idle_since >= timeout)
    due = w->retire_woken = true;
  /* Each parked worker wakes; those past their timeout leave (park). */
  if (due)
    uv_cond_broadcast(&g->supply.work_cv);
}

/* ---- leaving ------------------------------------------------------------ */

/* The last thing a worker does with the group: move itself to the zombie
 * list and tell whoever joins. The members' async sends happen under mu,
 * so no loop can close its handle in between (a close decides under mu,
 * see deliver.c). */
void uvpool__supply_leave_locked(uvpool__group_t *g, uvpool__worker_t *w) {
  uvpool__supply_t *s = &g->supply;
  set_awake(s, w, false);
  s->nidle--;
  uvpool__list_remove(&w->link);
  uvpool__list_push_back(&s->zombies, &w->link);
  s->nworkers--;
  if (w->idle_exit)
    s->nleaving--;
  /* Work queued while this worker ran thread_exit after an idle timeout
   * found it counted but unavailable: hand the work to a new thread, also
   * while closing or exiting (that work was accepted and must run). If no
   * thread can be started and none is left, the work fails with that
   * error rather than wait forever. */
  if (g->broken == 0 && !g->forked && runnable_now(g) > s->nidle) {
    int rc = uvpool__supply_spawn_locked(g, 0);
    if (rc != 0 && s->nworkers == 0)
      uvpool__pend_cancel_all(g, rc);
  }
  uvpool__exit_changed_locked(g);
  if (!g->forked)
    uvpool__group_poke_locked(g);
}

bool uvpool__supply_reap_due_locked(const uvpool__group_t *g) {
  return !uvpool__list_empty(&g->supply.zombies);
}

/* Joins the workers that left. Not under mu: a zombie may still be
 * returning from its thread function after its last unlock. */
void uvpool__supply_reap(uvpool__group_t *g) {
  for (;;) {
    uvpool__worker_t *z = NULL;
    uv_mutex_lock(&g->mu);
    if (!uvpool__list_empty(&g->supply.zombies)) {
      z = UVPOOL__CONTAINER(g->supply.zombies.next, uvpool__worker_t, link);
      uvpool__list_remove(&z->link);
    }
    uv_mutex_unlock(&g->mu);
    if (z == NULL)
      return;
    uvpool__thread_join(g, &z->tid);
    uvpool__free(z);
  }
}

/* ---- what the monitor asks ---------------------------------------------- */

void uvpool__supply_note_started_locked(uvpool__group_t *g) {
  UVPOOL__LIST_EACH(w, &g->supply.workers, uvpool__worker_t, link) {
    w->mon_seen = w->started;
    w->mon_stuck = 0;
  }
}

/* Whether w still runs the task it was seen stuck on this tick. */
static bool still_stuck(const uvpool__worker_t *w) {
  return w->current != NULL && w->started == w->mon_seen;
}

size_t uvpool__supply_stuck_locked(uvpool__group_t *g, bool saturated,
                                   bool peek, bool (*asleep)(int tid)) {
  /* One read costs some microseconds; past this many, as if asleep. */
  enum { PEEK_MAX = 16 };
  int tids[PEEK_MAX];
  unsigned ids[PEEK_MAX];
  bool sleeps[PEEK_MAX];
  size_t n = 0, help = 0;
  UVPOOL__LIST_EACH(w, &g->supply.workers, uvpool__worker_t, link) {
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
  uv_mutex_unlock(&g->mu);
  for (size_t i = 0; i < n; i++)
    sleeps[i] = asleep(tids[i]);
  uv_mutex_lock(&g->mu);
  /* While mu was dropped, workers may have finished their tasks, left or
   * started: count only those still stuck now. */
  help = 0;
  UVPOOL__LIST_EACH(w, &g->supply.workers, uvpool__worker_t, link) {
    for (size_t i = 0; i < n && !w->mon_help; i++)
      w->mon_help = ids[i] == w->id && sleeps[i];
    if (w->mon_help && still_stuck(w))
      help++;
  }
  return help;
}

bool uvpool__supply_add_locked(uvpool__group_t *g, size_t n) {
  uvpool__supply_t *s = &g->supply;
  /* Workers already on their way (starting, spinning, or parked and
   * signalled) take tasks before a new one could: they count first. */
  size_t pending = s->wake_pending ? 1 : 0;
  size_t coming = s->nstarting + s->nawake + pending;
  size_t parked = s->nparked;
  size_t wake = parked > pending ? parked - pending : 0;
  unsigned before = s->nworkers;
  n = n > coming ? n - coming : 0;
  if (wake > n)
    wake = n;
  for (size_t i = 0; i < wake; i++)
    signal_one_locked(s);
  for (n -= wake; n > 0 && s->nworkers < g->opts.max_workers; n--)
    if (uvpool__supply_spawn_locked(g, 0) != 0)
      break; /* tried again next tick */
  return wake > 0 || s->nworkers != before;
}

bool uvpool__supply_backlog_locked(const uvpool__group_t *g) {
  const uvpool__supply_t *s = &g->supply;
  return (g->q.nqueued > 0 || !uvpool__inbox_empty(g)) && s->nawake == 0 &&
         s->nparked == 0;
}

/* ---- exit and fork ------------------------------------------------------ */

unsigned uvpool__supply_others_locked(const uvpool__group_t *g,
                                      const uvpool__worker_t *me,
                                      unsigned *running) {
  const uvpool__supply_t *s = &g->supply;
  unsigned self = me != NULL && me->g == g;
  unsigned self_running = self && me->current != NULL;
  *running = s->nrunning - self_running;
  return s->nworkers - self;
}

bool uvpool__supply_publishing(const uvpool__group_t *g) {
  UVPOOL__LIST_EACH(w, &g->supply.workers, uvpool__worker_t, link)
  if (atomic_load_explicit(&w->pubseq, memory_order_acquire) & 1u)
    return true;
  return false;
}

/* Two closing members may wait at once: each sets pub_wait to what it
 * sees now, and a later value, or 0 (even), still answers the earlier
 * wait, since pubseq only grows. Workers are looked at under mu only, so
 * none is freed while looked at. */
void uvpool__supply_quiesce(uvpool__group_t *g) {
  bool waiting = true;
  uv_mutex_lock(&g->mu);
  UVPOOL__LIST_EACH(w, &g->supply.workers, uvpool__worker_t, link) {
    uint32_t seq = atomic_load_explicit(&w->pubseq, memory_order_acquire);
    w->pub_wait = (seq & 1u) ? seq : 0;
  }
  while (waiting) {
    waiting = false;
    UVPOOL__LIST_EACH(w, &g->supply.workers, uvpool__worker_t, link) {
      if (w->pub_wait != 0 &&
          atomic_load_explicit(&w->pubseq, memory_order_acquire) == w->pub_wait)
        waiting = true;
      else
        w->pub_wait = 0;
    }
    if (waiting) { /* a publish is a push and a send: a yield or two */
      uv_mutex_unlock(&g->mu);
      sched_yield();
      uv_mutex_lock(&g->mu);
    }
  }
  uv_mutex_unlock(&g->mu);
}

static void free_workers(uvpool__link_t *list) {
  while (!uvpool__list_empty(list)) {
    uvpool__worker_t *w = UVPOOL__CONTAINER(list->next, uvpool__worker_t, link);
    uvpool__list_remove(&w->link);
    uvpool__free(w);
  }
}

/* In a fork child: only the forking thread exists. What the workers ran
 * is settled cancelled, what they kept for a batch goes to the loop, and
 * the counts start from nothing. */
void uvpool__supply_fork_child(uvpool__group_t *g) {
  uvpool__supply_t *s = &g->supply;
  UVPOOL__LIST_EACH(w, &s->workers, uvpool__worker_t, link) {
    if (w->current != NULL)
      uvpool__settle_task_locked(w->current->pool, w->current, UVPOOL_CANCELLED,
                                 UV_ECANCELED, NULL);
    if (w->quiet != NULL)
      uvpool__done_push_chain(w->quiet_pool, w->quiet, w->quiet_last);
  }
  free_workers(&s->workers);
  free_workers(&s->zombies);
  s->nidle = s->nrunning = s->nleaving = s->nstarting = 0;
  atomic_store(&s->nworkers, 0);
  atomic_store(&s->nparked, 0);
  atomic_store(&s->nspinning, 0);
  atomic_store(&s->nawake, 0);
  atomic_store(&s->wake_pending, false);
  /* Nobody waits on it in the child: a fresh one is safe to reuse. */
  uv_cond_init(&s->work_cv);
}
