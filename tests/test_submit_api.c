/* uvpool_submit_cb, uvpool_future_arg and uvpool_submit_many: one step
 * for a task and its callback, the argument back from the future, and a
 * batch that is queued whole or not at all. */
#include "util.h"

#include <string.h>

typedef struct {
  int calls, off_loop;
  uvpool_state_t state;
  void *arg, *result;
} seen_t;

static void cb_seen(uvpool_future_t *f, void *data) {
  seen_t *s = data;
  s->calls++;
  if (!t_on_loop_thread())
    s->off_loop++;
  s->state = uvpool_future_state(f);
  s->arg = uvpool_future_arg(f);
  s->result = uvpool_future_result(f);
}

static void submit_cb_runs_cb_once_with_the_settled_future(void **state) {
  static int x;
  seen_t s = {0};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit_cb(pool, t_work_ok, &x, cb_seen, &s), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.off_loop, 0);
  assert_int_equal(s.state, UVPOOL_DONE);
  assert_ptr_equal(s.arg, &x);
  assert_ptr_equal(s.result, &x);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void
submit_cb_with_a_null_cb_is_einval_and_queues_nothing(void **state) {
  seen_t s = {0};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit_cb(pool, t_work_ok, NULL, NULL, NULL),
                   UV_EINVAL);
  assert_int_equal(uvpool_submit_cb(pool, NULL, NULL, cb_seen, &s), UV_EINVAL);
  assert_int_equal(uvpool_submit_cb(NULL, t_work_ok, NULL, cb_seen, &s),
                   UV_EINVAL);
  assert_int_equal(t_stats(pool).submitted, 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  assert_int_equal(s.calls, 0);
}

static void submit_cb_after_close_is_eshutdown_and_cb_never_runs(void **state) {
  seen_t s = {0};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_close(pool, 0, NULL, NULL), 0);
  assert_int_equal(uvpool_submit_cb(pool, t_work_ok, NULL, cb_seen, &s),
                   UV_ESHUTDOWN);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  t_loop_free(loop);
  assert_int_equal(s.calls, 0);
}

/* Queued behind a held worker and cancelled by the close: the callback
 * still runs, with the cancelled future and its arg. */
static void submit_cb_of_a_cancelled_task_runs_with_its_state(void **state) {
  static int x;
  seen_t s = {0};
  t_gated_t g;
  (void)state;
  t_gated_open(&g, 1);
  assert_int_equal(uvpool_submit_cb(g.pool, t_work_ok, &x, cb_seen, &s), 0);
  assert_int_equal(uvpool_close(g.pool, UVPOOL_CANCEL_PENDING, NULL, NULL), 0);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.state, UVPOOL_CANCELLED);
  assert_ptr_equal(s.arg, &x);
  uvpool_future_unref(g.holder);
  t_loop_free(g.loop);
  t_gate_free(g.hold);
}

static void submit_cb_allocates_nothing_in_steady_state(void **state) {
  static seen_t s;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  /* One worker: on a loaded machine the monitor may otherwise start a
   * second one meanwhile, an allocation of the supply, not of a task. */
  uvpool_t *pool = t_pool_max(loop, 1);
  for (int i = 0; i < 300; i++) /* warm */
    assert_int_equal(uvpool_submit_cb(pool, t_work_ok, NULL, cb_seen, &s), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  unsigned long before = uvpool__alloc_count();
  for (int i = 0; i < 200; i++)
    assert_int_equal(uvpool_submit_cb(pool, t_work_ok, NULL, cb_seen, &s), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uvpool__alloc_count() - before, 0);
  assert_int_equal(s.calls, 500);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

/* ---- uvpool_future_arg --------------------------------------------------- */

static void future_arg_is_the_arg_of_a_plain_task(void **state) {
  static int x;
  uvpool_future_t *f;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_ok, &x, &f), 0);
  assert_ptr_equal(uvpool_future_arg(f), &x); /* queued or running */
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_ptr_equal(uvpool_future_arg(f), &x); /* settled */
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_ptr_equal(uvpool_future_arg(f), &x); /* delivered */
  uvpool_future_unref(f);
  assert_null(uvpool_future_arg(NULL));
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

/* A task with options keeps its arg in its options while queued: the
 * future answers from there, and after the task ran or was cancelled. */
static void
future_arg_of_a_task_with_options_outlives_its_options(void **state) {
  static int x, y;
  uvpool_future_t *ran, *cancelled;
  uvpool_task_options_t o;
  t_gated_t g;
  (void)state;
  uvpool_task_options_init(&o);
  o.priority = 5;
  t_gated_open(&g, 1);
  assert_int_equal(uvpool_submit_ex(g.pool, &o, t_work_ok, &x, &ran), 0);
  assert_int_equal(uvpool_submit_ex(g.pool, &o, t_work_ok, &y, &cancelled), 0);
  assert_ptr_equal(uvpool_future_arg(ran), &x);
  assert_int_equal(uvpool_future_cancel(cancelled), 0);
  assert_ptr_equal(uvpool_future_arg(cancelled), &y);
  t_gated_release(&g);
  assert_int_equal(uvpool_future_wait(ran, -1), 0);
  assert_ptr_equal(uvpool_future_arg(ran), &x);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  uvpool_future_unref(ran);
  uvpool_future_unref(cancelled);
  t_gated_close(&g);
}

static void future_arg_of_a_combination_is_null(void **state) {
  uvpool_future_t *a, *all;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_ok, &a, &a), 0);
  assert_int_equal(uvpool_when_all(&a, 1, 0, &all), 0);
  assert_null(uvpool_future_arg(all));
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_null(uvpool_future_arg(all));
  uvpool_future_unref(a);
  uvpool_future_unref(all);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

/* ---- uvpool_submit_many -------------------------------------------------- */

#define N 64

static void many_tasks_start_in_array_order(void **state) {
  static _Atomic int next;
  static int log[N];
  static t_order_t slots[N];
  void *args[N];
  t_gated_t g;
  (void)state;
  atomic_store(&next, 0);
  for (int i = 0; i < N; i++) {
    slots[i] = (t_order_t){&next, log, i};
    args[i] = &slots[i];
  }
  t_gated_open(&g, 1); /* one worker, held: they all queue first */
  assert_int_equal(uvpool_submit_many(g.pool, t_work_order, args, N, NULL), 0);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&next), N);
  for (int i = 0; i < N; i++)
    assert_int_equal(log[i], i);
  t_gated_close(&g);
}

/* On the loop thread of a warm pool whose handle keeps the loop alive
 * (here: a held task), the batch takes the lock-free path; its order
 * holds there too, and it allocates nothing. */
static void many_on_the_loop_thread_start_in_array_order(void **state) {
  static _Atomic int next;
  static int log[N];
  static t_order_t slots[N];
  void *args[N];
  uvpool_future_t *holder;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_options_t o;
  uvpool_options_init(&o);
  o.max_workers = 1;
  uvpool_t *pool = t_pool_new(loop, &o);
  t_gate_t *hold = t_gate_new();
  for (int i = 0; i < 300; i++) /* warm: a worker, the monitor, a list */
    assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, NULL), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uvpool_submit(pool, t_work_gate, hold, &holder), 0);
  uv_sem_wait(&hold->started);
  atomic_store(&next, 0);
  for (int i = 0; i < N; i++) {
    slots[i] = (t_order_t){&next, log, i};
    args[i] = &slots[i];
  }
  unsigned long before = uvpool__alloc_count();
  assert_int_equal(uvpool_submit_many(pool, t_work_order, args, N, NULL), 0);
  assert_int_equal(uvpool__alloc_count() - before, 0);
  uv_sem_post(&hold->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&next), N);
  for (int i = 0; i < N; i++)
    assert_int_equal(log[i], i);
  uvpool_future_unref(holder);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(hold);
}

static void many_gives_one_referenced_future_per_arg(void **state) {
  static int xs[N];
  void *args[N];
  uvpool_future_t *futs[N];
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  for (int i = 0; i < N; i++)
    args[i] = &xs[i];
  assert_int_equal(uvpool_submit_many(pool, t_work_ok, args, N, futs), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  for (int i = 0; i < N; i++) {
    assert_int_equal(uvpool_future_state(futs[i]), UVPOOL_DONE);
    assert_ptr_equal(uvpool_future_result(futs[i]), &xs[i]);
    assert_ptr_equal(uvpool_future_arg(futs[i]), &xs[i]);
    uvpool_future_unref(futs[i]);
  }
  uvpool_stats_t st = t_stats(pool);
  assert_int_equal(st.submitted, N);
  assert_int_equal(st.completed, N);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void many_with_bad_arguments_is_einval(void **state) {
  void *args[1] = {NULL};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit_many(pool, t_work_ok, args, 0, NULL),
                   UV_EINVAL);
  assert_int_equal(uvpool_submit_many(pool, t_work_ok, NULL, 1, NULL),
                   UV_EINVAL);
  assert_int_equal(uvpool_submit_many(pool, NULL, args, 1, NULL), UV_EINVAL);
  assert_int_equal(uvpool_submit_many(NULL, t_work_ok, args, 1, NULL),
                   UV_EINVAL);
  assert_int_equal(t_stats(pool).submitted, 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void many_that_does_not_fit_max_queued_queues_nothing(void **state) {
  void *args[N];
  uvpool_future_t *futs[N];
  uv_loop_t *loop = t_loop_new();
  uvpool_options_t o;
  (void)state;
  uvpool_options_init(&o);
  o.max_queued = N - 1;
  uvpool_t *pool = t_pool_new(loop, &o);
  for (int i = 0; i < N; i++) {
    args[i] = NULL;
    futs[i] = (uvpool_future_t *)&futs; /* a marker: must stay */
  }
  assert_int_equal(uvpool_submit_many(pool, t_work_ok, args, N, futs),
                   UV_EAGAIN);
  for (int i = 0; i < N; i++)
    assert_ptr_equal(futs[i], (uvpool_future_t *)&futs);
  uvpool_stats_t st = t_stats(pool);
  assert_int_equal(st.submitted, 0);
  assert_int_equal(st.queued, 0);
  assert_int_equal(uvpool_submit_many(pool, t_work_ok, args, N - 1, NULL), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(pool).completed, N - 1);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void many_after_close_is_eshutdown_and_leaves_futs(void **state) {
  void *args[2] = {NULL, NULL};
  uvpool_future_t *futs[2] = {NULL, NULL};
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_close(pool, 0, NULL, NULL), 0);
  assert_int_equal(uvpool_submit_many(pool, t_work_ok, args, 2, futs),
                   UV_ESHUTDOWN);
  assert_null(futs[0]);
  assert_null(futs[1]);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  t_loop_free(loop);
}

/* Out of memory at any allocation the batch makes: nothing queued, futs
 * untouched; with memory back, the same batch goes through. */
static void many_out_of_memory_queues_nothing(void **state) {
  enum { BIG = 3000 }; /* three slabs of futures */
  static void *args[BIG];
  static uvpool_future_t *futs[BIG];
  int rc = UV_ENOMEM;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  for (unsigned long k = 1; k < 64 && rc != 0; k++) {
    memset(futs, 0, sizeof(futs));
    uvpool__alloc_fail_at(k, true);
    rc = uvpool_submit_many(pool, t_work_ok, args, BIG, futs);
    uvpool__alloc_fail_at(0, false);
    if (rc == 0)
      break;
    assert_int_equal(rc, UV_ENOMEM);
    for (int i = 0; i < BIG; i++)
      assert_null(futs[i]);
    uvpool_stats_t st = t_stats(pool);
    assert_int_equal(st.submitted, 0);
    assert_int_equal(st.queued, 0);
  }
  assert_int_equal(rc, 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(pool).completed, BIG);
  for (int i = 0; i < BIG; i++)
    uvpool_future_unref(futs[i]);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

/* From another thread: one locked step, delivered on the loop. */
static uvpool_t *foreign_pool;
static void *foreign_args[N];
static _Atomic int foreign_rc = 1;

static void foreign_main(void *arg) {
  (void)arg;
  atomic_store(&foreign_rc, uvpool_submit_many(foreign_pool, t_work_ok,
                                               foreign_args, N, NULL));
}

static void many_from_another_thread(void **state) {
  uv_thread_t tid;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  foreign_pool = t_pool_new(loop, NULL);
  assert_int_equal(uv_thread_create(&tid, foreign_main, NULL), 0);
  assert_int_equal(uv_thread_join(&tid), 0);
  assert_int_equal(atomic_load(&foreign_rc), 0);
  (void)t_stats(foreign_pool); /* the loop thread adopts the work */
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(foreign_pool).completed, N);
  t_pool_close(foreign_pool, 0);
  t_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(submit_cb_runs_cb_once_with_the_settled_future),
      T_TEST(submit_cb_with_a_null_cb_is_einval_and_queues_nothing),
      T_TEST(submit_cb_after_close_is_eshutdown_and_cb_never_runs),
      T_TEST(submit_cb_of_a_cancelled_task_runs_with_its_state),
      T_TEST(submit_cb_allocates_nothing_in_steady_state),
      T_TEST(future_arg_is_the_arg_of_a_plain_task),
      T_TEST(future_arg_of_a_task_with_options_outlives_its_options),
      T_TEST(future_arg_of_a_combination_is_null),
      T_TEST(many_tasks_start_in_array_order),
      T_TEST(many_on_the_loop_thread_start_in_array_order),
      T_TEST(many_gives_one_referenced_future_per_arg),
      T_TEST(many_with_bad_arguments_is_einval),
      T_TEST(many_that_does_not_fit_max_queued_queues_nothing),
      T_TEST(many_after_close_is_eshutdown_and_leaves_futs),
      T_TEST(many_out_of_memory_queues_nothing),
      T_TEST(many_from_another_thread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
