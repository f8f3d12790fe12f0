/* Groups: pools on several loops that share one set of workers.
 *
 * A pool made with opts.share joins the group of the pool it shares; any
 * other pool starts a group of its own. The group owns what the workers
 * touch (the run queue, the lanes, the supply, the monitor and the
 * deadline thread, the worker options) under one mutex; each pool owns
 * what its loop touches (the handle, the done list, its futures, its
 * counters, its close). A task knows its pool through its future
 * (f->pool), so workers run every member's tasks from one queue and
 * publish each outcome to the loop that asked.
 *
 * Rules:
 * - Members join and leave under the group's mu. A member leaves when its
 *   memory is released (uvpool__pool_release); the last one frees the
 *   group. By then every thread of the group was joined: the close that
 *   finishes while no member takes work waits for the workers to leave and
 *   joins them and the service threads (deliver.c).
 * - nopen counts the members that take work. At 0 the workers leave once
 *   the run queue is empty, as a single pool's did when it closed.
 * - Lock order: exit registry lock, then the group's mu (as everywhere). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_IDLE_TIMEOUT_MS 10000u
#define DEFAULT_SPIN_US 50u

static unsigned default_max_workers(void) {
  unsigned n = uv_available_parallelism() + 4;
  return n < 32 ? n : 32;
}

/* The options a sharing pool takes from its group must be left alone:
 * silently ignoring them would hide a mistake. */
static bool worker_opts_default(const uvpool_options_t *o) {
  return o->max_workers == 0 && o->min_workers == 0 &&
         o->idle_timeout_ms == 0 && o->stack_size == 0 && o->name == NULL &&
         o->thread_init == NULL && o->thread_exit == NULL &&
         o->thread_data == NULL && o->spin_us == UVPOOL_SPIN_DEFAULT;
}

static int opts_resolve(uvpool__group_t *g, const uvpool_options_t *in) {
  uvpool_options_t o = *in;
  if (o.max_workers == 0)
    o.max_workers = default_max_workers();
  if (o.min_workers > o.max_workers)
    return UV_EINVAL;
  if (o.idle_timeout_ms == 0)
    o.idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
  if (o.spin_us == UVPOOL_SPIN_DEFAULT)
    o.spin_us = DEFAULT_SPIN_US;
  snprintf(g->name, sizeof(g->name), "%s", o.name != NULL ? o.name : "uvpool");
  o.name = g->name;
  o.share = NULL;
  g->opts = o;
  return 0;
}

/* Coverage: glibc never fails to initialise a default mutex or condition
 * variable, so the unwinding below is checked but cannot be run. */
static int mutex_init_adaptive(uv_mutex_t *mu) {
  pthread_mutexattr_t a;
  int rc;
  if (pthread_mutexattr_init(&a) != 0) /* GCOVR_EXCL_BR_LINE */
    return UV_ENOMEM;                  /* GCOVR_EXCL_LINE */
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
  rc = pthread_mutex_init(mu, &a);
  pthread_mutexattr_destroy(&a);
  return uvpool__uv_code(rc);
}

static int sync_init(uvpool__group_t *g) {
  int rc = mutex_init_adaptive(&g->mu);
  if (rc != 0) /* GCOVR_EXCL_BR_LINE */
    return rc; /* GCOVR_EXCL_LINE */
  rc = uvpool__supply_init(g);
  if (rc != 0)    /* GCOVR_EXCL_BR_LINE */
    goto fail_mu; /* GCOVR_EXCL_LINE */
  rc = uv_cond_init(&g->drain_cv);
  if (rc != 0)    /* GCOVR_EXCL_BR_LINE */
    goto fail_cv; /* GCOVR_EXCL_LINE */
  rc = uvpool__deadline_init(g);
  if (rc != 0)       /* GCOVR_EXCL_BR_LINE */
    goto fail_drain; /* GCOVR_EXCL_LINE */
  rc = uvpool__monitor_init(g);
  if (rc != 0)    /* GCOVR_EXCL_BR_LINE */
    goto fail_dl; /* GCOVR_EXCL_LINE */
  return 0;
  /* GCOVR_EXCL_START */
fail_dl:
  uvpool__deadline_destroy(g);
fail_drain:
  uv_cond_destroy(&g->drain_cv);
fail_cv:
  uvpool__supply_destroy(g);
fail_mu:
  uv_mutex_destroy(&g->mu);
  return rc;
  /* GCOVR_EXCL_STOP */
}

static void group_free(uvpool__group_t *g) {
  if (g->nthreads != 0) { /* GCOVR_EXCL_START: a broken invariant */
    fprintf(stderr, "uvpool: group %p released with %u threads not joined\n",
            (void *)g, g->nthreads);
    abort();
  } /* GCOVR_EXCL_STOP */
  uvpool__monitor_destroy(g);
  uvpool__deadline_destroy(g);
  uv_cond_destroy(&g->drain_cv);
  uvpool__supply_destroy(g);
  uv_mutex_destroy(&g->mu);
  uvpool__runq_destroy(g);
  uvpool__free(g);
}

static void member_link_locked(uvpool__group_t *g, uvpool_t *pool) {
  pool->g = g;
  uvpool__list_push_back(&g->pools, &pool->g_link);
  g->npools++;
  g->nopen++;
  g->nundecided++;
}

static int group_new(uvpool_t *pool, const uvpool_options_t *opts) {
  uvpool__group_t *g =
      uvpool__aligned_alloc(_Alignof(uvpool__group_t), sizeof(*g));
  int rc;
  if (g == NULL)
    return UV_ENOMEM;
  memset(g, 0, sizeof(*g));
  uvpool__list_init(&g->pools);
  rc = opts_resolve(g, opts);
  if (rc == 0)
    rc = sync_init(g);
  if (rc != 0) {
    uvpool__free(g);
    return rc;
  }
  g->root = pool;
  member_link_locked(g, pool); /* no other thread knows g yet */
  return 0;
}

/* The shared pool must be open: its group may otherwise be on its way
 * out, with its workers leaving. */
static int group_share(uvpool_t *pool, uvpool_t *share) {
  uvpool__group_t *g;
  int rc = 0;
  uvpool__check_alive(share, "uvpool_new");
  g = share->g;
  uv_mutex_lock(&g->mu);
  if (!uvpool__accepts_work(share))
    rc = UV_ESHUTDOWN;
  else if (g->broken != 0)
    rc = g->broken;
  else
    member_link_locked(g, pool);
  uv_mutex_unlock(&g->mu);
  return rc;
}

int uvpool__group_join(uvpool_t *pool, const uvpool_options_t *opts) {
  if (opts->share == NULL)
    return group_new(pool, opts);
  if (!worker_opts_default(opts))
    return UV_EINVAL;
  return group_share(pool, opts->share);
}

void uvpool__group_leave(uvpool_t *pool) {
  uvpool__group_t *g = pool->g;
  bool last;
  uv_mutex_lock(&g->mu);
  uvpool__list_remove(&pool->g_link);
  /* A member that never began its close (uvpool_new's unwinding) still
   * counts as open and undecided. */
  if (uvpool__accepts_work(pool))
    uvpool__group_stop_taking_locked(g);
  if (!uvpool__closed(pool))
    g->nundecided--;
  uvpool__exit_changed_locked(g);
  last = --g->npools == 0;
  uv_mutex_unlock(&g->mu);
  if (last)
    group_free(g);
}

void uvpool__group_stop_taking_locked(uvpool__group_t *g) {
  if (--g->nopen == 0)
    uvpool__supply_broadcast_locked(g); /* idle workers leave */
}

bool uvpool__group_stopping(const uvpool__group_t *g) {
  return g->nopen == 0 || g->broken != 0 || g->forked;
}

void uvpool__group_poke_locked(uvpool__group_t *g) {
  UVPOOL__LIST_EACH(p, &g->pools, uvpool_t, g_link)
  if (uvpool__may_send(p))
    uv_async_send(&p->async);
}

void uvpool__group_stop_threads(uvpool__group_t *g) {
  uvpool__deadline_stop(g);
  uvpool__monitor_stop(g);
  uvpool__supply_reap(g);
}

/* Every thread of a group (workers, the monitor, the deadline thread)
 * counts in nthreads from its creation until it has been joined, whoever
 * created it and however late it first runs; the group's memory is
 * released only when none is left. Once a close decided to stop the
 * group's threads (stopped, set under mu when no member took work and no
 * worker was left), no thread is created any more: a thread that decided
 * to start one before that, on what it saw then, is refused. */
int uvpool__thread_start_locked(uvpool__group_t *g, uv_thread_t *tid,
                                size_t stack, void (*fn)(void *), void *arg) {
  int rc;
  if (g->stopped)
    return UV_ESHUTDOWN;
  rc = uvpool__thread_create(tid, stack, fn, arg);
  if (rc == 0) {
    g->nthreads++;
    uvpool__hook(UVPOOL__HOOK_THREAD_CREATED, g->root);
  }
  return rc;
}

void uvpool__thread_join(uvpool__group_t *g, uv_thread_t *tid) {
  uv_thread_join(tid);
  uv_mutex_lock(&g->mu);
  g->nthreads--;
  uv_mutex_unlock(&g->mu);
}

void uvpool__group_fork_child(uvpool__group_t *g) {
  g->forked = true;
  uvpool__inbox_close(g);
  uvpool__supply_fork_child(g);
  uvpool__monitor_fork_child(g);
  uvpool__deadline_fork_child(g);
  uvpool__pend_cancel_all(g, UV_ECANCELED);
  g->nthreads = 0; /* none of them exists here: nothing to join */
  /* Nobody waits on it in the child; a fresh one is safe to reuse.
   * The mutex, held since fork_prepare, is replaced rather than unlocked:
   * glibc counts the parent's threads that waited on a condition variable
   * with it as its users, and would refuse to destroy it when the child
   * frees the group. */
  uv_cond_init(&g->drain_cv);
  if (uv_mutex_init(&g->mu) != 0)
    abort(); /* GCOVR_EXCL_LINE: glibc's default mutex init cannot fail */
}
