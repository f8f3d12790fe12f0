/* uvpool_queue_work and uvpool_cancel_work: what libuv's own threadpool
 * tests check for uv_queue_work and uv_cancel, written for a pool, and
 * the requeue patterns of libuv's queue-work benchmark. */
#include "util.h"

#include <string.h>

/* Counters a req's callbacks bump. Static: a worker may still run when an
 * assertion fails (see util.h). */
static _Atomic int work_calls;
static int after_calls, after_status_sum, after_off_loop;
static uv_loop_t *after_loop;

static void reset(void) {
  atomic_store(&work_calls, 0);
  after_calls = 0;
  after_status_sum = 0;
  after_off_loop = 0;
  after_loop = NULL;
}

static void work_count(uv_work_t *req) {
  (void)req;
  atomic_fetch_add(&work_calls, 1);
}

static void after_count(uv_work_t *req, int status) {
  after_calls++;
  after_status_sum += status;
  after_loop = req->loop;
  if (!t_on_loop_thread())
    after_off_loop++;
}

static void
queue_work_runs_work_then_after_work_on_the_loop_thread(void **state) {
  static uv_work_t req;
  int data = 42;
  (void)state;
  reset();
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  memset(&req, 0xa5, sizeof(req)); /* uninitialised memory, as in C */
  req.data = &data;
  assert_int_equal(uvpool_queue_work(pool, &req, work_count, after_count), 0);
  assert_int_equal(req.type, UV_WORK);
  assert_ptr_equal(req.loop, loop);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&work_calls), 1);
  assert_int_equal(after_calls, 1);
  assert_int_equal(after_status_sum, 0);
  assert_int_equal(after_off_loop, 0);
  assert_ptr_equal(after_loop, loop);
  assert_ptr_equal(req.data, &data);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void queue_work_with_a_null_work_cb_is_einval(void **state) {
  static uv_work_t req;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_queue_work(pool, &req, NULL, after_count), UV_EINVAL);
  assert_int_equal(uvpool_queue_work(NULL, &req, work_count, after_count),
                   UV_EINVAL);
  assert_int_equal(uvpool_queue_work(pool, NULL, work_count, after_count),
                   UV_EINVAL);
  assert_int_equal(uvpool_cancel_work(NULL), UV_EINVAL);
  assert_int_equal(t_stats(pool).submitted, 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void
cancel_work_cancels_16_reqs_queued_behind_a_saturated_pool(void **state) {
  static uv_work_t reqs[16];
  t_gated_t g;
  (void)state;
  reset();
  t_gated_open(&g, 1); /* its one worker is held: the reqs queue */
  for (int i = 0; i < 16; i++)
    assert_int_equal(
        uvpool_queue_work(g.pool, &reqs[i], work_count, after_count), 0);
  for (int i = 0; i < 16; i++)
    assert_int_equal(uvpool_cancel_work(&reqs[i]), 0);
  for (int i = 0; i < 16; i++)
    assert_int_equal(uvpool_cancel_work(&reqs[i]), UV_EBUSY); /* settled */
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&work_calls), 0);
  assert_int_equal(after_calls, 16);
  assert_int_equal(after_status_sum, 16 * UV_ECANCELED);
  assert_int_equal(t_stats(g.pool).cancelled, 16);
  t_gated_close(&g);
}

static void
cancel_work_before_the_loop_runs_calls_after_work_once(void **state) {
  static uv_work_t req;
  t_gated_t g;
  (void)state;
  reset();
  t_gated_open(&g, 1);
  assert_int_equal(uvpool_queue_work(g.pool, &req, work_count, after_count), 0);
  assert_int_equal(uvpool_cancel_work(&req), 0);
  assert_int_equal(after_calls, 0); /* never inside the cancel */
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(after_calls, 1);
  assert_int_equal(after_status_sum, UV_ECANCELED);
  assert_int_equal(atomic_load(&work_calls), 0);
  t_gated_close(&g);
}

/* A req whose work waits on a gate: running while the test cancels. */
static t_gate_t *running_gate;

static void work_gated(uv_work_t *req) {
  void *unused;
  (void)req;
  (void)t_work_gate(running_gate, &unused);
}

static void cancel_work_of_a_running_req_is_ebusy(void **state) {
  static uv_work_t req;
  (void)state;
  reset();
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  running_gate = t_gate_new();
  assert_int_equal(uvpool_queue_work(pool, &req, work_gated, after_count), 0);
  uv_sem_wait(&running_gate->started);
  assert_int_equal(uvpool_cancel_work(&req), UV_EBUSY);
  uv_sem_post(&running_gate->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(after_calls, 1);
  assert_int_equal(after_status_sum, 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(running_gate);
}

static void cancel_work_of_a_finished_req_is_ebusy(void **state) {
  static uv_work_t req;
  (void)state;
  reset();
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_queue_work(pool, &req, work_count, after_count), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uvpool_cancel_work(&req), UV_EBUSY);
  assert_int_equal(after_calls, 1);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void uv_cancel_on_a_pool_req_is_ebusy_and_harmless(void **state) {
  static uv_work_t req;
  t_gated_t g;
  (void)state;
  reset();
  t_gated_open(&g, 1);
  assert_int_equal(uvpool_queue_work(g.pool, &req, work_count, after_count), 0);
  assert_int_equal(uv_cancel((uv_req_t *)&req), UV_EBUSY);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&work_calls), 1);
  assert_int_equal(after_calls, 1);
  assert_int_equal(after_status_sum, 0);
  t_gated_close(&g);
}

/* libuv's queue-work benchmark: the next round is queued from the req's
 * own after_work_cb, or from its work with no after_work_cb. */
static uvpool_t *requeue_pool;
static int requeue_left;
static _Atomic int requeue_left_worker;
static uv_sem_t *requeue_done;

static void after_requeue(uv_work_t *req, int status) {
  assert_int_equal(status, 0);
  after_calls++;
  if (--requeue_left > 0)
    assert_int_equal(
        uvpool_queue_work(requeue_pool, req, work_count, after_requeue), 0);
}

static void req_queued_again_from_its_after_work_cb(void **state) {
  static uv_work_t req;
  (void)state;
  reset();
  uv_loop_t *loop = t_loop_new();
  requeue_pool = t_pool_new(loop, NULL);
  requeue_left = 1000;
  assert_int_equal(
      uvpool_queue_work(requeue_pool, &req, work_count, after_requeue), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(requeue_left, 0);
  assert_int_equal(after_calls, 1000);
  assert_int_equal(atomic_load(&work_calls), 1000);
  t_pool_close(requeue_pool, 0);
  t_loop_free(loop);
}

static void work_requeue(uv_work_t *req) {
  atomic_fetch_add(&work_calls, 1);
  if (atomic_fetch_sub(&requeue_left_worker, 1) > 1) {
    if (uvpool_queue_work(requeue_pool, req, work_requeue, NULL) != 0)
      uv_sem_post(requeue_done); /* the count shows the failure */
  } else {
    uv_sem_post(requeue_done);
  }
}

static void req_queued_again_from_its_work_without_after_work_cb(void **state) {
  static uv_work_t req;
  (void)state;
  reset();
  uv_loop_t *loop = t_loop_new();
  requeue_pool = t_pool_new(loop, NULL);
  requeue_done = t_sem_new(0);
  atomic_store(&requeue_left_worker, 1000);
  assert_int_equal(uvpool_queue_work(requeue_pool, &req, work_requeue, NULL),
                   0);
  uv_sem_wait(requeue_done);
  assert_int_equal(atomic_load(&work_calls), 1000);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(requeue_pool).completed, 1000);
  t_pool_close(requeue_pool, 0);
  t_loop_free(loop);
  t_sem_free(requeue_done);
}

/* Queued from another thread: after_work_cb still runs on the loop. */
static uv_work_t foreign_req;
static uvpool_t *foreign_pool;
static _Atomic int foreign_rc = 1;

static void foreign_main(void *arg) {
  (void)arg;
  atomic_store(&foreign_rc, uvpool_queue_work(foreign_pool, &foreign_req,
                                              work_count, after_count));
}

static void queue_work_from_another_thread(void **state) {
  uv_thread_t tid;
  (void)state;
  reset();
  uv_loop_t *loop = t_loop_new();
  foreign_pool = t_pool_new(loop, NULL);
  assert_int_equal(uv_thread_create(&tid, foreign_main, NULL), 0);
  assert_int_equal(uv_thread_join(&tid), 0);
  assert_int_equal(atomic_load(&foreign_rc), 0);
  (void)t_stats(foreign_pool); /* the loop thread adopts the work */
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(after_calls, 1);
  assert_int_equal(after_off_loop, 0);
  t_pool_close(foreign_pool, 0);
  t_loop_free(loop);
}

static void close_with_cancel_pending_cancels_queued_reqs(void **state) {
  static uv_work_t reqs[4];
  t_gated_t g;
  (void)state;
  reset();
  t_gated_open(&g, 1);
  for (int i = 0; i < 4; i++)
    assert_int_equal(
        uvpool_queue_work(g.pool, &reqs[i], work_count, after_count), 0);
  assert_int_equal(uvpool_close(g.pool, UVPOOL_CANCEL_PENDING, NULL, NULL), 0);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(atomic_load(&work_calls), 0);
  assert_int_equal(after_calls, 4);
  assert_int_equal(after_status_sum, 4 * UV_ECANCELED);
  for (int i = 0; i < 4; i++)
    assert_int_equal(uvpool_cancel_work(&reqs[i]), UV_EBUSY);
  uvpool_future_unref(g.holder); /* outlives its pool */
  t_loop_free(g.loop);
  t_gate_free(g.hold);
}

static void queue_work_after_close_is_eshutdown(void **state) {
  static uv_work_t req;
  (void)state;
  reset();
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_close(pool, 0, NULL, NULL), 0);
  assert_int_equal(uvpool_queue_work(pool, &req, work_count, after_count),
                   UV_ESHUTDOWN);
  assert_int_equal(uvpool_cancel_work(&req), UV_EBUSY);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(after_calls, 0);
  t_loop_free(loop);
}

static void future_arg_of_a_queued_req_is_the_req(void **state) {
  static uv_work_t req;
  t_gated_t g;
  (void)state;
  reset();
  t_gated_open(&g, 1);
  assert_int_equal(uvpool_queue_work(g.pool, &req, work_count, after_count), 0);
  // NOLINTNEXTLINE(performance-no-int-to-ptr)
  uvpool_future_t *f = (uvpool_future_t *)req.reserved[0];
  assert_non_null(f);
  assert_ptr_equal(uvpool_future_arg(f), &req);
  t_gated_release(&g);
  assert_int_equal(uv_run(g.loop, UV_RUN_DEFAULT), 0);
  t_gated_close(&g);
}

static void queue_work_allocates_nothing_in_steady_state(void **state) {
  static uv_work_t req;
  (void)state;
  reset();
  uv_loop_t *loop = t_loop_new();
  /* One worker: on a loaded machine the monitor may otherwise start a
   * second one meanwhile, an allocation of the supply, not of a task. */
  requeue_pool = t_pool_max(loop, 1);
  requeue_left = 100; /* warm: a worker, the monitor, the free list */
  assert_int_equal(
      uvpool_queue_work(requeue_pool, &req, work_count, after_requeue), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  unsigned long before = uvpool__alloc_count();
  requeue_left = 1000;
  assert_int_equal(
      uvpool_queue_work(requeue_pool, &req, work_count, after_requeue), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uvpool__alloc_count() - before, 0);
  t_pool_close(requeue_pool, 0);
  t_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(queue_work_runs_work_then_after_work_on_the_loop_thread),
      T_TEST(queue_work_with_a_null_work_cb_is_einval),
      T_TEST(cancel_work_cancels_16_reqs_queued_behind_a_saturated_pool),
      T_TEST(cancel_work_before_the_loop_runs_calls_after_work_once),
      T_TEST(cancel_work_of_a_running_req_is_ebusy),
      T_TEST(cancel_work_of_a_finished_req_is_ebusy),
      T_TEST(uv_cancel_on_a_pool_req_is_ebusy_and_harmless),
      T_TEST(req_queued_again_from_its_after_work_cb),
      T_TEST(req_queued_again_from_its_work_without_after_work_cb),
      T_TEST(queue_work_from_another_thread),
      T_TEST(close_with_cancel_pending_cancels_queued_reqs),
      T_TEST(queue_work_after_close_is_eshutdown),
      T_TEST(future_arg_of_a_queued_req_is_the_req),
      T_TEST(queue_work_allocates_nothing_in_steady_state),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
