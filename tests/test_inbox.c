/* The loop thread's lock-free submit: the inbox keeps one submission order
 * with locked submits, cancel reaches its tasks before they run, its
 * submits are counted, and a parked worker is woken for it. */
#include "util.h"

#include <sched.h>

typedef struct {
  uvpool_t *pool;
  t_order_t *slot;
  int rc;
} remote_t;

static void remote_submit(void *arg) {
  remote_t *r = arg;
  r->rc = uvpool_submit(r->pool, t_work_order, r->slot, NULL);
}

static void lock_free_and_locked_submits_keep_one_order(void **state) {
  enum { N = 9 };
  t_gated_t g;
  /* The tasks use them, even after a failure. */
  static t_order_t slots[N];
  static int log[N];
  static _Atomic int next;
  (void)state;
  atomic_store(&next, 0);
  t_gated_open(&g, 1);
  /* Every third task comes from another thread (the locked path), after
   * the loop thread's earlier ones (lock-free) are in the inbox. */
  for (int i = 0; i < N; i++) {
    slots[i] = (t_order_t){&next, log, i};
    if (i % 3 == 2) {
      remote_t r = {g.pool, &slots[i], -1};
      uv_thread_t t;
      assert_int_equal(uv_thread_create(&t, remote_submit, &r), 0);
      assert_int_equal(uv_thread_join(&t), 0);
      assert_int_equal(r.rc, 0);
    } else {
      assert_int_equal(uvpool_submit(g.pool, t_work_order, &slots[i], NULL), 0);
    }
  }
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&next), N);
  for (int i = 0; i < N; i++)
    assert_int_equal(log[i], i);
  t_gated_close(&g);
}

/* Plain tasks have priority 0: those waiting in the inbox overtake
 * queued tasks of negative priority when a worker moves them to the run
 * queue, as they would have if queued directly. */
static void lock_free_submits_overtake_negative_priorities(void **state) {
  enum { NNEG = 3, N = 6 };
  t_gated_t g;
  uvpool_task_options_t o;
  /* The tasks use them, even after a failure. */
  static t_order_t slots[N];
  static int log[N];
  static _Atomic int next;
  (void)state;
  atomic_store(&next, 0);
  t_gated_open(&g, 1);
  uvpool_task_options_init(&o);
  o.priority = -1;
  for (int i = 0; i < N; i++)
    slots[i] = (t_order_t){&next, log, i};
  for (int i = 0; i < NNEG; i++) /* locked: straight to the run queue */
    assert_int_equal(
        uvpool_submit_ex(g.pool, &o, t_work_order, &slots[i], NULL), 0);
  for (int i = NNEG; i < N; i++)
    assert_int_equal(uvpool_submit(g.pool, t_work_order, &slots[i], NULL), 0);
  assert_false(uvpool__inbox_empty(g.pool->g)); /* some took the inbox */
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&next), N);
  for (int i = 0; i < N; i++) /* the plain ones, then the negative ones */
    assert_int_equal(log[i], i < N - NNEG ? NNEG + i : i - (N - NNEG));
  t_gated_close(&g);
}

/* The task may still be in the inbox or already moved by the monitor,
 * which is awake while the only worker is busy: either way cancel finds
 * it. */
static void cancel_reaches_a_lock_free_submit_before_it_runs(void **state) {
  t_gated_t g;
  uvpool_future_t *f = NULL;
  static _Atomic int ran; /* its task may write it, even after a failure */
  (void)state;
  atomic_store(&ran, 0);
  t_gated_open(&g, 1);
  assert_int_equal(uvpool_submit(g.pool, t_work_count, &ran, &f), 0);
  assert_int_equal(uvpool_future_cancel(f), 0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_CANCELLED);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&ran), 0);
  assert_int_equal(t_stats(g.pool).cancelled, 1);
  uvpool_future_unref(f);
  t_gated_close(&g);
}

static void stats_count_lock_free_submits(void **state) {
  enum { N = 1000 };
  t_gated_t g;
  (void)state;
  t_gated_open(&g, 1);
  for (int i = 0; i < N; i++)
    assert_int_equal(uvpool_submit(g.pool, t_work_ok, NULL, NULL), 0);
  uvpool_stats_t s = t_stats(g.pool);
  assert_int_equal(s.submitted, N + 1);
  assert_int_equal(s.queued, N);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  s = t_stats(g.pool);
  assert_int_equal(s.completed, N + 1);
  assert_int_equal(s.queued, 0);
  t_gated_close(&g);
}

/* In a done callback (the handle keeps the loop alive, so the submit is
 * lock-free), once the only worker parked: the submit must wake it. */
typedef struct {
  uvpool_t *pool;
  uvpool_future_t *second;
  int rc;
} wake_t;

static bool parked(uvpool_t *pool) {
  bool r;
  uv_mutex_lock(&pool->g->mu);
  r = pool->g->supply.nparked == 1;
  uv_mutex_unlock(&pool->g->mu);
  return r;
}

static void submit_once_parked(uvpool_future_t *f, void *data) {
  wake_t *w = data;
  (void)f;
  for (long i = 0; !parked(w->pool); i++) {
    assert_true(i < 100000000L);
    sched_yield();
  }
  w->rc = uvpool_submit(w->pool, t_work_ok, NULL, &w->second);
}

static void lock_free_submit_wakes_a_parked_worker(void **state) {
  uvpool_options_t o;
  uvpool_future_t *first = NULL;
  wake_t w = {NULL, NULL, -1};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_options_init(&o);
  o.max_workers = 1;
  o.spin_us = 0; /* park at once */
  o.idle_timeout_ms = 600000;
  w.pool = t_pool_new(loop, &o);
  /* Stock the loop thread's free list: the next submit is lock-free. */
  assert_int_equal(uvpool_submit(w.pool, t_work_ok, NULL, &first), 0);
  assert_int_equal(uvpool_future_on_done(first, submit_once_parked, &w), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(w.rc, 0);
  /* uv_run returned only once the second task was delivered. */
  assert_int_equal(uvpool_future_state(w.second), UVPOOL_DONE);
  assert_int_equal(t_stats(w.pool).peak_workers, 1);
  uvpool_future_unref(first);
  uvpool_future_unref(w.second);
  t_pool_close(w.pool, 0);
  t_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(lock_free_and_locked_submits_keep_one_order),
      T_TEST(lock_free_submits_overtake_negative_priorities),
      T_TEST(cancel_reaches_a_lock_free_submit_before_it_runs),
      T_TEST(stats_count_lock_free_submits),
      T_TEST(lock_free_submit_wakes_a_parked_worker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
