/* A worker that leaves while a task is queued starts its replacement; if
 * the replacement cannot start (thread creation or its allocation fails),
 * the queued task must not be left with no worker and none to come.
 * Reproduces a stranding found by the failure walks (test_alloc_walk). */
#include "util.h"

#include <sched.h>

/* A closing pool accepts no submissions, but a task of uvpool_submit_after
 * accepted earlier joins the queue when its dependency completes, on the
 * thread that completes it: here a worker of another pool. If the closing
 * pool's only worker is then in thread_exit (counted, unavailable), the
 * task is queued without a new worker, and the leaving worker starts a
 * replacement. When that replacement cannot start (thread creation or its
 * allocation fails), the task must not be left queued with no worker:
 * nothing else would ever start one, the close would never finish and
 * uv_run() would never return. */

typedef struct {
  uv_sem_t *in_exit, *leave;
  _Atomic int exits;
} exit_hold_t;

/* Holds the first worker in thread_exit; later ones pass. */
static void hold_in_thread_exit(void *data) {
  exit_hold_t *h = data;
  if (atomic_fetch_add(&h->exits, 1) != 0)
    return;
  uv_sem_post(h->in_exit);
  uv_sem_wait(h->leave);
}

static void on_pool_closed(uvpool_t *pool, void *data) {
  (void)pool;
  *(int *)data = 1;
}

/* The pool's threads use them, even after a failure (and so after the
 * next test began): each test has its own, in static storage. */
typedef struct {
  exit_hold_t h;        /* thread_exit reads it */
  _Atomic int held_ran; /* held's task writes it */
} leave_t;

static void last_worker_leaving_strands_no_work(leave_t *x,
                                                bool thread_failure) {
  uvpool_options_t o;
  exit_hold_t *h = &x->h;
  _Atomic int *held_ran = &x->held_ran;
  t_gate_t *g = t_gate_new(), *g2 = t_gate_new();
  uvpool_future_t *first, *dep, *dep2, *held, *rescue;
  uvpool_stats_t s;
  bool stranded;
  int closed = 0;
  atomic_store(held_ran, 0);
  uv_loop_t *loop = t_loop_new();
  h->in_exit = t_sem_new(0);
  h->leave = t_sem_new(0);
  atomic_init(&h->exits, 0);
  uvpool_options_init(&o);
  o.max_workers = 1;
  o.thread_exit = hold_in_thread_exit;
  o.thread_data = h;
  uvpool_t *pool = t_pool_new(loop, &o);
  uvpool_t *deps = t_pool_new(loop, NULL); /* runs the dependencies */
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &first), 0);
  assert_int_equal(uvpool_future_wait(first, -1), 0); /* pool has a worker */
  assert_int_equal(uvpool_submit(deps, t_work_gate, g, &dep), 0);
  assert_int_equal(uvpool_submit(deps, t_work_gate, g2, &dep2), 0);
  assert_int_equal(
      uvpool_submit_after(pool, &dep, 1, t_work_count, held_ran, &held), 0);
  assert_int_equal(
      uvpool_submit_after(pool, &dep2, 1, t_work_ok, NULL, &rescue), 0);
  assert_int_equal(uvpool_close(pool, 0, on_pool_closed, &closed), 0);
  uv_sem_wait(h->in_exit); /* the idle worker, closing, leaves */

  uv_sem_post(&g->go); /* dep completes: held joins pool's queue */
  assert_int_equal(uvpool_future_wait(held, 0), UV_ETIMEDOUT);
  for (long i = 0; (s = t_stats(pool)).queued != 1; i++) {
    assert_true(i < 100000000L);
    sched_yield();
  }
  assert_int_equal(s.workers, 1); /* the one in thread_exit */

  if (thread_failure)
    uvpool__thread_fail_at(1, UV_EAGAIN);
  else
    uvpool__alloc_fail_at(1, false);
  uv_sem_post(h->leave);
  /* Not a timed wait: the worker leaves under the pool lock right after
   * thread_exit returns; stats reads under that lock. */
  for (long i = 0; (s = t_stats(pool)).workers != 0; i++) {
    assert_true(i < 100000000L);
    sched_yield();
  }
  stranded = s.queued > 0;
  uvpool__thread_fail_at(0, 0);
  uvpool__alloc_fail_at(0, false);

  /* rescue's release starts a worker, which also takes held if stranded. */
  uv_sem_post(&g2->go);
  while (!closed)
    uv_run(loop, UV_RUN_ONCE);
  t_pool_close(deps, 0);
  t_loop_free(loop);
  /* Failed with the error that kept its own worker from starting, never
   * run; or, had it been stranded, run by the rescuing worker. */
  if (uvpool_future_state(held) == UVPOOL_DONE) {
    assert_int_equal(atomic_load(held_ran), 1);
  } else {
    assert_int_equal(uvpool_future_state(held), UVPOOL_FAILED);
    assert_int_equal(uvpool_future_status(held),
                     thread_failure ? UV_EAGAIN : UV_ENOMEM);
    assert_int_equal(atomic_load(held_ran), 0);
  }
  assert_int_equal(uvpool_future_state(rescue), UVPOOL_DONE);
  uvpool_future_unref(first);
  uvpool_future_unref(dep);
  uvpool_future_unref(dep2);
  uvpool_future_unref(held);
  uvpool_future_unref(rescue);
  t_sem_free(h->in_exit);
  t_sem_free(h->leave);
  t_gate_free(g);
  t_gate_free(g2);
  assert_false(stranded); /* queued, with no worker and none to come */
}

static void
replacement_thread_failure_as_last_worker_leaves_strands_no_work(void **state) {
  static leave_t x;
  (void)state;
  last_worker_leaving_strands_no_work(&x, true);
}

static void
replacement_allocation_failure_as_last_worker_leaves_strands_no_work(
    void **state) {
  static leave_t x;
  (void)state;
  last_worker_leaving_strands_no_work(&x, false);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(replacement_thread_failure_as_last_worker_leaves_strands_no_work),
      T_TEST(
          replacement_allocation_failure_as_last_worker_leaves_strands_no_work),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
