/* Composing work: when_all, when_any, submit_after, cooperative cancel,
 * priorities, deadlines and lanes. */
#include "util.h"

#include <string.h>

static void when_all_settles_after_every_input(void **state) {
  t_gated_t g;
  uvpool_future_t *in[3], *all = NULL;
  int calls = 0;
  (void)state;
  t_gated_open(&g, 1);
  for (int i = 0; i < 3; i++)
    assert_int_equal(uvpool_submit(g.pool, t_work_ok, NULL, &in[i]), 0);
  assert_int_equal(uvpool_when_all(in, 3, 0, &all), 0);
  assert_int_equal(uvpool_future_on_done(all, t_cb_count, &calls), 0);
  assert_int_equal(uvpool_future_state(all), UVPOOL_PENDING);
  for (int i = 0; i < 3; i++)
    uvpool_future_unref(in[i]); /* the combination holds its own refs */
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(calls, 1);
  assert_int_equal(uvpool_future_state(all), UVPOOL_DONE);
  assert_int_equal(uvpool_future_status(all), 0);
  uvpool_future_unref(all);
  t_gated_close(&g);
}

static void when_all_reports_first_failure_in_array_order(void **state) {
  t_gated_t g;
  uvpool_future_t *in[3], *all = NULL;
  (void)state;
  t_gated_open(&g, 1);
  assert_int_equal(uvpool_submit(g.pool, t_work_ok, NULL, &in[0]), 0);
  assert_int_equal(
      uvpool_submit(g.pool, t_work_ret, (void *)(intptr_t)UV_EIO, &in[1]), 0);
  assert_int_equal(
      uvpool_submit(g.pool, t_work_ret, (void *)(intptr_t)UV_EPERM, &in[2]), 0);
  assert_int_equal(uvpool_when_all(in, 3, 0, &all), 0);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uvpool_future_state(all), UVPOOL_FAILED);
  assert_int_equal(uvpool_future_status(all), UV_EIO);
  for (int i = 0; i < 3; i++)
    uvpool_future_unref(in[i]);
  uvpool_future_unref(all);
  t_gated_close(&g);
}

static void when_all_fail_fast_settles_at_first_failure(void **state) {
  t_gated_t g;
  uvpool_future_t *in[2], *all = NULL;
  t_gate_t *slow;
  (void)state;
  slow = t_gate_new();
  t_gated_open(&g, 3); /* holder, slow, and one for the failing input */
  assert_int_equal(uvpool_submit(g.pool, t_work_gate, slow, &in[0]), 0);
  assert_int_equal(
      uvpool_submit(g.pool, t_work_ret, (void *)(intptr_t)UV_EIO, &in[1]), 0);
  assert_int_equal(uvpool_when_all(in, 2, UVPOOL_FAIL_FAST, &all), 0);
  uv_sem_wait(&slow->started);
  while (uvpool_future_state(all) == UVPOOL_PENDING)
    uv_run(g.loop, UV_RUN_ONCE);
  assert_int_equal(uvpool_future_state(in[0]), UVPOOL_RUNNING);
  assert_int_equal(uvpool_future_state(all), UVPOOL_FAILED);
  assert_int_equal(uvpool_future_status(all), UV_EIO);
  uv_sem_post(&slow->go);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  for (int i = 0; i < 2; i++)
    uvpool_future_unref(in[i]);
  uvpool_future_unref(all);
  t_gated_close(&g);
  t_gate_free(slow);
}

static void when_any_settles_with_the_first_input(void **state) {
  t_gated_t g;
  uvpool_future_t *in[2], *any = NULL;
  t_gate_t *slow;
  int token = 7;
  (void)state;
  slow = t_gate_new();
  t_gated_open(&g, 3);
  assert_int_equal(uvpool_submit(g.pool, t_work_gate, slow, &in[0]), 0);
  assert_int_equal(uvpool_submit(g.pool, t_work_ok, &token, &in[1]), 0);
  assert_int_equal(uvpool_when_any(in, 2, &any), 0);
  uvpool_future_unref(in[1]); /* the result stays valid through any */
  while (uvpool_future_state(any) == UVPOOL_PENDING)
    uv_run(g.loop, UV_RUN_ONCE);
  assert_int_equal(uvpool_future_status(any), 0);
  uvpool_future_t *first = uvpool_future_result(any);
  assert_non_null(first);
  assert_ptr_equal(uvpool_future_result(first), &token);
  uv_sem_post(&slow->go);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  uvpool_future_unref(in[0]);
  uvpool_future_unref(any);
  t_gated_close(&g);
  t_gate_free(slow);
}

static void combinators_reject_bad_input(void **state) {
  t_gated_t g;
  uvpool_future_t *in[2], *out = (uvpool_future_t *)&g, *x = NULL;
  (void)state;
  t_gated_open(&g, 1);
  uv_loop_t *other = t_loop_new();
  uvpool_t *p2 = NULL;
  assert_int_equal(uvpool_new(other, NULL, &p2), 0);
  assert_int_equal(uvpool_submit(g.pool, t_work_ok, NULL, &in[0]), 0);
  assert_int_equal(uvpool_submit(p2, t_work_ok, NULL, &in[1]), 0);
  assert_int_equal(uvpool_when_all(in, 0, 0, &out), UV_EINVAL);
  assert_int_equal(uvpool_when_any(NULL, 1, &out), UV_EINVAL);
  assert_int_equal(uvpool_when_all(in, 2, 0, &out), UV_EINVAL);
  assert_int_equal(uvpool_when_any(in, 2, &out), UV_EINVAL);
  assert_int_equal(uvpool_submit_after(g.pool, in, 2, t_work_ok, NULL, &x),
                   UV_EINVAL);
  assert_int_equal(uvpool_when_all(in, 1, 0, NULL), UV_EINVAL);
  assert_ptr_equal(out, (uvpool_future_t *)&g);
  assert_null(x);
  t_gated_release(&g);
  uvpool_future_unref(in[0]);
  uvpool_future_unref(in[1]);
  /* the other loop's pool */
  assert_int_equal(uvpool_close(p2, 0, NULL, NULL), 0);
  t_loop_free(other);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  t_gated_close(&g);
}

static void cancelling_a_combination_cancels_nothing_else(void **state) {
  t_gated_t g;
  uvpool_future_t *in[2], *all = NULL;
  int calls = 0;
  (void)state;
  t_gated_open(&g, 1);
  for (int i = 0; i < 2; i++)
    assert_int_equal(uvpool_submit(g.pool, t_work_ok, NULL, &in[i]), 0);
  assert_int_equal(uvpool_when_all(in, 2, 0, &all), 0);
  assert_int_equal(uvpool_future_on_done(all, t_cb_count, &calls), 0);
  assert_int_equal(uvpool_future_cancel(all), 0);
  assert_int_equal(uvpool_future_state(all), UVPOOL_CANCELLED);
  assert_int_equal(uvpool_future_state(in[0]), UVPOOL_PENDING);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(calls, 1);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(uvpool_future_state(in[i]), UVPOOL_DONE);
    uvpool_future_unref(in[i]);
  }
  uvpool_future_unref(all);
  t_gated_close(&g);
}

static void cancelling_an_input_settles_the_combination(void **state) {
  t_gated_t g;
  uvpool_future_t *in[2], *all = NULL;
  (void)state;
  t_gated_open(&g, 1);
  for (int i = 0; i < 2; i++)
    assert_int_equal(uvpool_submit(g.pool, t_work_ok, NULL, &in[i]), 0);
  assert_int_equal(uvpool_when_all(in, 2, UVPOOL_FAIL_FAST, &all), 0);
  assert_int_equal(uvpool_future_cancel(in[1]), 0);
  while (uvpool_future_state(all) == UVPOOL_PENDING)
    uv_run(g.loop, UV_RUN_ONCE);
  assert_int_equal(uvpool_future_state(all), UVPOOL_CANCELLED);
  assert_int_equal(uvpool_future_status(all), UV_ECANCELED);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  for (int i = 0; i < 2; i++)
    uvpool_future_unref(in[i]);
  uvpool_future_unref(all);
  t_gated_close(&g);
}

typedef struct {
  uvpool_future_t *deps[3];
  int sum;
} sum_t;

static int add_results(void *arg, void **result) {
  sum_t *s = arg;
  (void)result;
  for (int i = 0; i < 3; i++) {
    if (uvpool_future_state(s->deps[i]) != UVPOOL_DONE)
      return UV_EINVAL; /* must never run early */
    s->sum += *(int *)uvpool_future_result(s->deps[i]);
  }
  return 0;
}

static void submit_after_runs_once_every_dependency_is_done(void **state) {
  t_gated_t g;
  /* The tasks read them, even after a failure. */
  static int v[3] = {1, 20, 300};
  static sum_t s;
  uvpool_future_t *f = NULL;
  (void)state;
  memset(&s, 0, sizeof(s));
  t_gated_open(&g, 2);
  for (int i = 0; i < 3; i++)
    assert_int_equal(uvpool_submit(g.pool, t_work_ok, &v[i], &s.deps[i]), 0);
  assert_int_equal(uvpool_submit_after(g.pool, s.deps, 3, add_results, &s, &f),
                   0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_PENDING);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_DONE);
  assert_int_equal(s.sum, 321);
  uvpool_stats_t st = t_stats(g.pool);
  assert_int_equal(st.submitted, 5);
  assert_int_equal(st.completed, 5);
  for (int i = 0; i < 3; i++)
    uvpool_future_unref(s.deps[i]);
  uvpool_future_unref(f);
  t_gated_close(&g);
}

static int must_not_run(void *arg, void **result) {
  (void)result;
  atomic_fetch_add((_Atomic int *)arg, 1);
  return 0;
}

static void submit_after_failed_dependency_never_runs(void **state) {
  t_gated_t g;
  uvpool_future_t *d[2], *f = NULL;
  static _Atomic int ran; /* its task may write it, even after a failure */
  int calls = 0;
  (void)state;
  atomic_store(&ran, 0);
  t_gated_open(&g, 1);
  assert_int_equal(uvpool_submit(g.pool, t_work_ok, NULL, &d[0]), 0);
  assert_int_equal(
      uvpool_submit(g.pool, t_work_ret, (void *)(intptr_t)UV_EPIPE, &d[1]), 0);
  assert_int_equal(uvpool_submit_after(g.pool, d, 2, must_not_run, &ran, &f),
                   0);
  assert_int_equal(uvpool_future_on_done(f, t_cb_count, &calls), 0);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&ran), 0);
  assert_int_equal(calls, 1);
  assert_int_equal(uvpool_future_state(f), UVPOOL_FAILED);
  assert_int_equal(uvpool_future_status(f), UV_EPIPE);
  uvpool_stats_t st = t_stats(g.pool);
  assert_int_equal(st.submitted, st.completed + st.failed + st.cancelled);
  for (int i = 0; i < 2; i++)
    uvpool_future_unref(d[i]);
  uvpool_future_unref(f);
  t_gated_close(&g);
}

static void submit_after_cancelled_dependency_cancels(void **state) {
  t_gated_t g;
  uvpool_future_t *d = NULL, *f = NULL;
  static _Atomic int ran; /* its task may write it, even after a failure */
  (void)state;
  atomic_store(&ran, 0);
  t_gated_open(&g, 1);
  assert_int_equal(uvpool_submit(g.pool, t_work_ok, NULL, &d), 0);
  assert_int_equal(uvpool_submit_after(g.pool, &d, 1, must_not_run, &ran, &f),
                   0);
  assert_int_equal(uvpool_future_cancel(d), 0);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&ran), 0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_CANCELLED);
  assert_int_equal(uvpool_future_status(f), UV_ECANCELED);
  uvpool_future_unref(d);
  uvpool_future_unref(f);
  t_gated_close(&g);
}

static void close_cancel_pending_settles_queued_dependants(void **state) {
  t_gated_t g;
  uvpool_future_t *d = NULL, *f = NULL;
  static _Atomic int ran; /* its task may write it, even after a failure */
  int calls = 0;
  (void)state;
  atomic_store(&ran, 0);
  t_gated_open(&g, 1);
  assert_int_equal(uvpool_submit(g.pool, t_work_ok, NULL, &d), 0);
  assert_int_equal(uvpool_submit_after(g.pool, &d, 1, must_not_run, &ran, &f),
                   0);
  assert_int_equal(uvpool_future_on_done(f, t_cb_count, &calls), 0);
  uvpool_future_unref(d);
  assert_int_equal(uvpool_close(g.pool, UVPOOL_CANCEL_PENDING, NULL, NULL), 0);
  t_gated_release(&g);
  t_loop_free(g.loop); /* runs until the close finished */
  assert_int_equal(calls, 1);
  assert_int_equal(atomic_load(&ran), 0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_CANCELLED);
  uvpool_future_unref(f);
  uvpool_future_unref(g.holder);
  t_gate_free(g.hold);
}

static void close_runs_dependants_released_while_closing(void **state) {
  t_gated_t g;
  uvpool_future_t *d = NULL, *f = NULL;
  static _Atomic int ran; /* its task may write it, even after a failure */
  (void)state;
  atomic_store(&ran, 0);
  t_gated_open(&g, 1);
  assert_int_equal(uvpool_submit(g.pool, t_work_ok, NULL, &d), 0);
  assert_int_equal(uvpool_submit_after(g.pool, &d, 1, must_not_run, &ran, &f),
                   0);
  uvpool_future_unref(d);
  assert_int_equal(uvpool_close(g.pool, 0, NULL, NULL), 0);
  t_gated_release(&g);
  t_loop_free(g.loop);
  assert_int_equal(atomic_load(&ran), 1); /* accepted before close: runs */
  assert_int_equal(uvpool_future_state(f), UVPOOL_DONE);
  uvpool_future_unref(f);
  uvpool_future_unref(g.holder);
  t_gate_free(g.hold);
}

/* Combinations settle when their inputs do, on the thread that settles
 * them: a wait on the loop thread returns with the loop not running. */
static void
waiting_on_when_all_on_the_loop_thread_needs_no_loop_run(void **state) {
  uvpool_future_t *in[2], *all;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  for (int i = 0; i < 2; i++)
    assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &in[i]), 0);
  assert_int_equal(uvpool_when_all(in, 2, 0, &all), 0);
  assert_int_equal(uvpool_future_wait(all, -1), 0);
  assert_int_equal(uvpool_future_state(all), UVPOOL_DONE);
  for (int i = 0; i < 2; i++)
    uvpool_future_unref(in[i]);
  uvpool_future_unref(all);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void
waiting_on_when_any_on_the_loop_thread_needs_no_loop_run(void **state) {
  uvpool_future_t *in[2], *any;
  t_gate_t *g = t_gate_new();
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &in[0]), 0);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &in[1]), 0);
  assert_int_equal(uvpool_when_any(in, 2, &any), 0);
  assert_int_equal(uvpool_future_wait(any, -1), 0);
  assert_ptr_equal(uvpool_future_result(any), in[1]);
  uv_sem_post(&g->go);
  for (int i = 0; i < 2; i++)
    uvpool_future_unref(in[i]);
  uvpool_future_unref(any);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static void
waiting_on_submit_after_on_the_loop_thread_needs_no_loop_run(void **state) {
  uvpool_future_t *dep, *after;
  static _Atomic int ran; /* its task writes it, even after a failure */
  t_gate_t *g = t_gate_new();
  (void)state;
  atomic_store(&ran, 0);
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &dep), 0);
  assert_int_equal(
      uvpool_submit_after(pool, &dep, 1, t_work_count, &ran, &after), 0);
  uv_sem_post(&g->go);
  assert_int_equal(uvpool_future_wait(after, -1), 0);
  assert_int_equal(uvpool_future_state(after), UVPOOL_DONE);
  assert_int_equal(atomic_load(&ran), 1);
  uvpool_future_unref(dep);
  uvpool_future_unref(after);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static void higher_priority_starts_first_fifo_within(void **state) {
  enum { N = 6 };
  t_gated_t g;
  int prio[N] = {0, 5, 0, 5, -1, 9};
  int want[N] = {5, 1, 3, 0, 2, 4};
  /* The tasks use them, even after a failure. */
  static int log[N];
  static _Atomic int next;
  static t_order_t slots[N];
  (void)state;
  atomic_store(&next, 0);
  t_gated_open(&g, 1);
  for (int i = 0; i < N; i++) {
    uvpool_task_options_t o;
    uvpool_task_options_init(&o);
    o.priority = prio[i];
    slots[i] = (t_order_t){&next, log, i};
    assert_int_equal(
        uvpool_submit_ex(g.pool, &o, t_work_order, &slots[i], NULL), 0);
  }
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(log[i], want[i]);
  t_gated_close(&g);
}

static void low_priority_task_is_not_starved(void **state) {
  enum { N = 100 };
  t_gated_t g;
  /* The tasks use them, even after a failure. */
  static int log[N + 1];
  static _Atomic int next;
  static t_order_t low, high[N];
  uvpool_task_options_t o;
  (void)state;
  atomic_store(&next, 0);
  t_gated_open(&g, 1);
  uvpool_task_options_init(&o);
  o.priority = -10;
  low = (t_order_t){&next, log, -1};
  assert_int_equal(uvpool_submit_ex(g.pool, &o, t_work_order, &low, NULL), 0);
  o.priority = 10;
  for (int i = 0; i < N; i++) {
    high[i] = (t_order_t){&next, log, i};
    assert_int_equal(uvpool_submit_ex(g.pool, &o, t_work_order, &high[i], NULL),
                     0);
  }
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  /* Overtaken 32 times at most: it runs 33rd. */
  for (int i = 0; i < 32; i++)
    assert_int_equal(log[i], i);
  assert_int_equal(log[32], -1);
  assert_int_equal(log[33], 32);
  t_gated_close(&g);
}

static void
queued_task_past_deadline_times_out_while_workers_busy(void **state) {
  t_gated_t g;
  uvpool_future_t *f = NULL;
  static _Atomic int ran; /* its task may write it, even after a failure */
  int calls = 0;
  uvpool_task_options_t o;
  (void)state;
  atomic_store(&ran, 0);
  t_gated_open(&g, 1);
  uvpool_task_options_init(&o);
  o.deadline_ms = 20;
  assert_int_equal(uvpool_submit_ex(g.pool, &o, must_not_run, &ran, &f), 0);
  assert_int_equal(uvpool_future_on_done(f, t_cb_count, &calls), 0);
  /* The only worker stays busy: the deadline alone settles f, and its
   * callback runs while the worker is still held. */
  while (calls == 0)
    uv_run(g.loop, UV_RUN_ONCE);
  assert_int_equal(uvpool_future_state(f), UVPOOL_CANCELLED);
  assert_int_equal(uvpool_future_status(f), UV_ETIMEDOUT);
  assert_int_equal(uvpool_future_state(g.holder), UVPOOL_RUNNING);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&ran), 0);
  assert_int_equal(t_stats(g.pool).cancelled, 1);
  uvpool_future_unref(f);
  t_gated_close(&g);
}

static void started_task_ignores_its_deadline(void **state) {
  uvpool_future_t *f = NULL;
  t_gate_t *gate;
  uvpool_task_options_t o;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  gate = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  /* An idle worker exists, so the task starts at once, well before its
   * deadline (generous for slow sanitizer and valgrind builds). */
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool_future_unref(f);
  uvpool_task_options_init(&o);
  o.deadline_ms = 300;
  assert_int_equal(uvpool_submit_ex(pool, &o, t_work_gate, gate, &f), 0);
  uv_sem_wait(&gate->started);
  /* Past the deadline, the started task still runs to its end. */
  assert_int_equal(uvpool_future_wait(f, 400), UV_ETIMEDOUT);
  assert_int_equal(uvpool_future_state(f), UVPOOL_RUNNING);
  uv_sem_post(&gate->go);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_DONE);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(gate);
}

static void lane_caps_running_tasks_others_keep_going(void **state) {
  uvpool_options_t po;
  uvpool_task_options_t o;
  unsigned lane = 0;
  t_gate_t *slow;
  uvpool_future_t *fast = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  slow = t_gate_new();
  uvpool_options_init(&po);
  po.max_workers = 4;
  uvpool_t *pool = t_pool_new(loop, &po);
  assert_int_equal(uvpool_lane_new(pool, 2, &lane), 0);
  assert_int_not_equal(lane, 0);
  uvpool_task_options_init(&o);
  o.lane = lane;
  for (int i = 0; i < 5; i++)
    assert_int_equal(uvpool_submit_ex(pool, &o, t_work_gate, slow, NULL), 0);
  uv_sem_wait(&slow->started);
  uv_sem_wait(&slow->started);
  /* Two lane tasks run; the default lane still gets a worker. */
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &fast), 0);
  assert_int_equal(uvpool_future_wait(fast, -1), 0);
  uvpool_stats_t s = t_stats(pool);
  assert_int_equal(s.running, 2);
  assert_int_equal(s.queued, 3);
  assert_int_equal(atomic_load(&slow->ran), 2);
  for (int i = 0; i < 5; i++)
    uv_sem_post(&slow->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&slow->ran), 5);
  assert_true(t_stats(pool).peak_workers <= 3);
  uvpool_future_unref(fast);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(slow);
}

static void lane_rejects_bad_arguments(void **state) {
  unsigned lane = 99;
  uvpool_task_options_t o;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_lane_new(pool, 0, &lane), UV_EINVAL);
  assert_int_equal(uvpool_lane_new(NULL, 1, &lane), UV_EINVAL);
  assert_int_equal(uvpool_lane_new(pool, 1, NULL), UV_EINVAL);
  assert_int_equal(lane, 99);
  uvpool_task_options_init(&o);
  o.lane = 7;
  assert_int_equal(uvpool_submit_ex(pool, &o, t_work_ok, NULL, NULL),
                   UV_EINVAL);
  assert_int_equal(t_stats(pool).submitted, 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void cancel_parked_lane_task(void **state) {
  uvpool_task_options_t o;
  unsigned lane = 0;
  t_gate_t *g;
  uvpool_future_t *a = NULL, *b = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_lane_new(pool, 1, &lane), 0);
  uvpool_task_options_init(&o);
  o.lane = lane;
  o.priority = 3;
  assert_int_equal(uvpool_submit_ex(pool, &o, t_work_gate, g, &a), 0);
  assert_int_equal(uvpool_submit_ex(pool, &o, t_work_gate, g, &b), 0);
  uv_sem_wait(&g->started);
  assert_int_equal(uvpool_future_cancel(b), 0);
  assert_int_equal(t_stats(pool).queued, 0);
  uv_sem_post(&g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&g->ran), 1);
  uvpool_future_unref(a);
  uvpool_future_unref(b);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(when_all_settles_after_every_input),
      T_TEST(when_all_reports_first_failure_in_array_order),
      T_TEST(when_all_fail_fast_settles_at_first_failure),
      T_TEST(when_any_settles_with_the_first_input),
      T_TEST(combinators_reject_bad_input),
      T_TEST(cancelling_a_combination_cancels_nothing_else),
      T_TEST(cancelling_an_input_settles_the_combination),
      T_TEST(submit_after_runs_once_every_dependency_is_done),
      T_TEST(submit_after_failed_dependency_never_runs),
      T_TEST(submit_after_cancelled_dependency_cancels),
      T_TEST(close_cancel_pending_settles_queued_dependants),
      T_TEST(close_runs_dependants_released_while_closing),
      T_TEST(waiting_on_when_all_on_the_loop_thread_needs_no_loop_run),
      T_TEST(waiting_on_when_any_on_the_loop_thread_needs_no_loop_run),
      T_TEST(waiting_on_submit_after_on_the_loop_thread_needs_no_loop_run),
      T_TEST(higher_priority_starts_first_fifo_within),
      T_TEST(low_priority_task_is_not_starved),
      T_TEST(queued_task_past_deadline_times_out_while_workers_busy),
      T_TEST(started_task_ignores_its_deadline),
      T_TEST(lane_caps_running_tasks_others_keep_going),
      T_TEST(lane_rejects_bad_arguments),
      T_TEST(cancel_parked_lane_task),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
