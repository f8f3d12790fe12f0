/* Worker supply: a pool never starts a worker that the tasks running or
 * waiting do not need, a worker that is starting counts as supply however
 * long it takes, and no thread of a pool is created once its close decided
 * to finish. Each test orders the threads through the library's test
 * hooks (uvpool__hook and the monitor's /proc and CPU hooks), never
 * through timing: the monitor is held while it reads /proc, with the pool
 * lock dropped, and a new worker is held before it first runs. */
#include "util.h"

#include <string.h>

/* What the hooks see and do; one test at a time. */
static struct {
  const void *pool;
  _Atomic unsigned created;      /* pool threads created */
  _Atomic unsigned started;      /* workers that began to run */
  _Atomic unsigned hold_start;   /* hold the n-th worker at its start */
  _Atomic unsigned peek_after;   /* hold a /proc peek once created >= n */
  _Atomic bool peek_held;        /* the held peek happened */
  _Atomic bool tick_wanted;      /* post `tick` at the next tick's end */
  _Atomic bool created_after;    /* a thread was created after `decided` */
  _Atomic bool decided;          /* the close decided to finish */
  _Atomic bool hold_close;       /* hold the close there for a tick */
  uv_sem_t *at_start, *start_go; /* the held worker */
  uv_sem_t *in_peek, *peek_go;   /* the held peek */
  uv_sem_t *tick;                /* a monitor tick ended */
} H;

static void hook(uvpool__hook_point_t point, const void *pool) {
  if (pool != H.pool)
    return;
  switch (point) {
  case UVPOOL__HOOK_WORKER_START:
    if (atomic_fetch_add(&H.started, 1) + 1 == atomic_load(&H.hold_start)) {
      uv_sem_post(H.at_start);
      uv_sem_wait(H.start_go);
    }
    break;
  case UVPOOL__HOOK_THREAD_CREATED:
    atomic_fetch_add(&H.created, 1);
    if (atomic_load(&H.decided))
      atomic_store(&H.created_after, true);
    break;
  case UVPOOL__HOOK_MONITOR_TICK:
    if (atomic_exchange(&H.tick_wanted, false))
      uv_sem_post(H.tick);
    break;
  case UVPOOL__HOOK_WORKER_IDLE:
  case UVPOOL__HOOK_POOL_JOINED:
    break;
  case UVPOOL__HOOK_CLOSE_DECIDED:
    /* Let the monitor finish the tick it began before the close, on what
     * it saw then, before the close stops it. */
    atomic_store(&H.decided, true);
    if (atomic_load(&H.hold_close)) {
      uv_sem_post(H.peek_go);
      uv_sem_wait(H.tick);
    }
    break;
  }
}

static bool saturated(void) { return true; }

/* Every stuck worker is asleep; the first peek once `peek_after` threads
 * exist is held, with the pool lock dropped. */
static int asleep(int tid) {
  (void)tid;
  unsigned after = atomic_load(&H.peek_after);
  if (after != 0 && atomic_load(&H.created) >= after &&
      !atomic_exchange(&H.peek_held, true)) {
    uv_sem_post(H.in_peek);
    uv_sem_wait(H.peek_go);
    atomic_store(&H.tick_wanted, true);
  }
  return 1;
}

static void hooks_on(void) {
  memset(&H, 0, sizeof(H));
  H.at_start = t_sem_new(0);
  H.start_go = t_sem_new(0);
  H.in_peek = t_sem_new(0);
  H.peek_go = t_sem_new(0);
  H.tick = t_sem_new(0);
  uvpool__monitor_saturated_hook(saturated);
  uvpool__monitor_asleep_hook(asleep);
  uvpool__hook_set(hook);
}

static void hooks_off(void) {
  uvpool__hook_set(NULL);
  uvpool__monitor_asleep_hook(NULL);
  uvpool__monitor_saturated_hook(NULL);
  t_sem_free(H.at_start);
  t_sem_free(H.start_go);
  t_sem_free(H.in_peek);
  t_sem_free(H.peek_go);
  t_sem_free(H.tick);
}

/* Threads a pool creates for its first worker: the worker, the monitor. */
enum { FIRST_THREADS = 2 };

static void
monitor_adds_no_worker_for_a_task_a_late_starter_took(void **state) {
  uv_loop_t *loop = t_loop_new();
  t_gate_t *a = t_gate_new(), *b = t_gate_new();
  (void)state;
  hooks_on();
  atomic_store(&H.hold_start, 2); /* the worker started for b */
  atomic_store(&H.peek_after, FIRST_THREADS + 1);
  uvpool_t *pool = t_pool_max(loop, 4);
  H.pool = pool;
  assert_int_equal(uvpool_submit(pool, t_work_gate, a, NULL), 0);
  uv_sem_wait(&a->started);
  assert_int_equal(uvpool_submit(pool, t_work_gate, b, NULL), 0);
  uv_sem_wait(H.at_start); /* the monitor started a worker for b ... */
  uv_sem_wait(H.in_peek);  /* ... and, a tick later, looks at a's again */
  uv_sem_post(H.start_go);
  uv_sem_wait(&b->started); /* the late starter took b */
  uv_sem_post(H.peek_go);
  uv_sem_wait(H.tick); /* the monitor finished that tick */
  assert_int_equal(atomic_load(&H.created), FIRST_THREADS + 1);
  assert_int_equal(t_stats(pool).workers, 2);
  uv_sem_post(&a->go);
  uv_sem_post(&b->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  t_pool_close(pool, 0);
  hooks_off();
  t_loop_free(loop);
  t_gate_free(a);
  t_gate_free(b);
}

static void starting_worker_counts_as_supply_for_the_monitor(void **state) {
  uv_loop_t *loop = t_loop_new();
  t_gate_t *a = t_gate_new(), *b = t_gate_new();
  (void)state;
  hooks_on();
  atomic_store(&H.hold_start, 2);
  /* Hold no peek; count ticks instead, through the tick hook. */
  uvpool_t *pool = t_pool_max(loop, 4);
  H.pool = pool;
  assert_int_equal(uvpool_submit(pool, t_work_gate, a, NULL), 0);
  uv_sem_wait(&a->started);
  assert_int_equal(uvpool_submit(pool, t_work_gate, b, NULL), 0);
  uv_sem_wait(H.at_start);
  /* Ticks that each saw a stuck worker and a waiting task. */
  for (int i = 0; i < 5; i++) {
    atomic_store(&H.tick_wanted, true);
    uv_sem_wait(H.tick);
  }
  assert_int_equal(atomic_load(&H.created), FIRST_THREADS + 1);
  uvpool_stats_t s = t_stats(pool);
  assert_int_equal(s.workers, 2);
  assert_int_equal(s.queued, 1);
  uv_sem_post(H.start_go);
  uv_sem_wait(&b->started);
  uv_sem_post(&a->go);
  uv_sem_post(&b->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(pool).peak_workers, 2);
  t_pool_close(pool, 0);
  hooks_off();
  t_loop_free(loop);
  t_gate_free(a);
  t_gate_free(b);
}

static void
no_thread_is_created_once_the_close_decided_to_finish(void **state) {
  uv_loop_t *loop = t_loop_new();
  t_gate_t *a = t_gate_new();
  static _Atomic int ran; /* a task writes it: not on the stack */
  uvpool_future_t *fb = NULL;
  (void)state;
  atomic_store(&ran, 0);
  hooks_on();
  atomic_store(&H.peek_after, FIRST_THREADS);
  atomic_store(&H.hold_close, true);
  uvpool_t *pool = t_pool_max(loop, 2);
  H.pool = pool;
  assert_int_equal(uvpool_submit(pool, t_work_gate, a, NULL), 0);
  uv_sem_wait(&a->started);
  assert_int_equal(uvpool_submit(pool, t_work_count, &ran, &fb), 0);
  /* The monitor saw a's worker stuck with a task waiting, and now reads
   * /proc with the lock dropped. */
  uv_sem_wait(H.in_peek);
  assert_int_equal(uvpool_future_cancel(fb), 0);
  uvpool_future_unref(fb);
  uv_sem_post(&a->go);
  /* The worker leaves, the close decides to finish, and only then does the
   * monitor go on with its tick (see the CLOSE_DECIDED hook). */
  t_pool_close(pool, 0);
  assert_true(atomic_load(&H.decided));
  assert_false(atomic_load(&H.created_after));
  assert_int_equal(atomic_load(&H.created), FIRST_THREADS);
  assert_int_equal(atomic_load(&ran), 0);
  hooks_off();
  t_loop_free(loop);
  t_gate_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(monitor_adds_no_worker_for_a_task_a_late_starter_took),
      T_TEST(starting_worker_counts_as_supply_for_the_monitor),
      T_TEST(no_thread_is_created_once_the_close_decided_to_finish),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
