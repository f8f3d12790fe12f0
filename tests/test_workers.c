/* Worker lifecycle: lazy start, reuse before spawn, help for stuck
 * workers (for running ones only while CPUs are spare), max_workers, idle
 * exit, min_workers, names, stack size, thread hooks. */
#include "util.h"

#include <pthread.h>
#include <string.h>

static void no_worker_starts_before_work(void **state) {
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  uvpool_stats_t s = t_stats(pool);
  assert_int_equal(s.workers, 0);
  assert_int_equal(s.peak_workers, 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void submit_wait_submit_reuses_one_worker(void **state) {
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  for (int i = 0; i < 2000; i++) {
    uvpool_future_t *f = NULL;
    assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
    assert_int_equal(uvpool_future_wait(f, -1), 0);
    uvpool_future_unref(f);
  }
  assert_int_equal(t_stats(pool).peak_workers, 1);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void busy_workers_make_room_for_one_more(void **state) {
  t_gate_t *g;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  for (unsigned i = 1; i <= 3; i++) {
    assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
    uv_sem_wait(&g->started);
    assert_int_equal(t_stats(pool).workers, i);
  }
  for (int i = 0; i < 3; i++)
    uv_sem_post(&g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

/* The monitor asks once per tick whether the CPUs are saturated; this
 * answer counts the ticks. */
static uv_sem_t *ticks;
static _Atomic bool cpus_saturated;
static _Atomic bool second_started;

static bool saturated_probe(void) {
  uv_sem_post(ticks);
  return atomic_load(&cpus_saturated);
}

/* A gate that also posts ticks, so that a wrong start ends the wait. */
static int work_gate_tick(void *arg, void **result) {
  atomic_store(&second_started, true);
  uv_sem_post(ticks);
  return t_work_gate(arg, result);
}

static void saturated_test_begin(bool saturated) {
  ticks = t_sem_new(0);
  atomic_store(&cpus_saturated, saturated);
  atomic_store(&second_started, false);
  uvpool__monitor_saturated_hook(saturated_probe);
}

static void saturated_test_end(void) {
  uvpool__monitor_saturated_hook(NULL);
  t_sem_free(ticks);
}

/* A pool whose one worker runs task a while task b waits, the monitor told
 * that the CPUs are saturated and that the worker's thread is running (it
 * waits on a's gate: the real answer, "asleep", is tested below). */
typedef struct {
  uv_loop_t *loop;
  uvpool_t *pool;
  t_gate_t *a, *b;
} spun_t;

static int never_asleep(int tid) {
  (void)tid;
  return 0;
}

static void spun_open(spun_t *x) {
  x->loop = t_loop_new();
  x->a = t_gate_new();
  x->b = t_gate_new();
  saturated_test_begin(true);
  uvpool__monitor_asleep_hook(never_asleep);
  x->pool = t_pool_new(x->loop, NULL);
  assert_int_equal(uvpool_submit(x->pool, t_work_gate, x->a, NULL), 0);
  uv_sem_wait(&x->a->started);
  assert_int_equal(uvpool_submit(x->pool, work_gate_tick, x->b, NULL), 0);
}

static void spun_close(spun_t *x) {
  uv_sem_post(&x->a->go);
  uv_sem_post(&x->b->go);
  assert_int_equal(uv_run(x->loop, UV_RUN_DEFAULT), 0);
  uvpool__monitor_asleep_hook(NULL);
  saturated_test_end();
  t_pool_close(x->pool, 0);
  t_loop_free(x->loop);
  t_gate_free(x->a);
  t_gate_free(x->b);
}

static void
no_worker_is_added_beside_a_running_one_while_cpus_are_saturated(void **state) {
  spun_t x;
  (void)state;
  spun_open(&x);
  /* Each of these ticks saw a stuck, running worker and a task waiting. */
  for (int i = 0; i < 5; i++) {
    uv_sem_wait(ticks);
    assert_false(atomic_load(&second_started));
  }
  uvpool_stats_t s = t_stats(x.pool);
  assert_int_equal(s.workers, 1);
  assert_int_equal(s.queued, 1);
  atomic_store(&cpus_saturated, false);
  uv_sem_wait(&x.b->started); /* a later tick adds the worker */
  assert_int_equal(t_stats(x.pool).workers, 2);
  spun_close(&x);
}

static void
running_worker_gets_help_after_a_grace_when_saturated(void **state) {
  spun_t x;
  unsigned seen = 0;
  (void)state;
  spun_open(&x);
  /* Every post is a tick, until the last: b starting. */
  do {
    uv_sem_wait(ticks);
    seen++;
  } while (!atomic_load(&second_started));
  assert_true(seen > UVPOOL__RUNNING_GRACE_TICKS - 1);
  spun_close(&x);
}

static void
blocked_worker_gets_help_even_when_cpus_are_saturated(void **state) {
  t_gate_t *a, *b;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  a = t_gate_new();
  b = t_gate_new();
  saturated_test_begin(true);
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, a, NULL), 0);
  uv_sem_wait(&a->started);
  assert_int_equal(uvpool_submit(pool, t_work_gate, b, NULL), 0);
  uv_sem_wait(&b->started); /* the worker running a sleeps: b gets one */
  assert_int_equal(t_stats(pool).workers, 2);
  uv_sem_post(&a->go);
  uv_sem_post(&b->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  saturated_test_end();
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(a);
  t_gate_free(b);
}

static void never_more_than_max_workers(void **state) {
  enum { N = 20 };
  uvpool_options_t o;
  t_gate_t *g;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_options_init(&o);
  o.max_workers = 3;
  uvpool_t *pool = t_pool_new(loop, &o);
  for (int i = 0; i < N; i++)
    assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  for (int i = 0; i < 3; i++)
    uv_sem_wait(&g->started);
  uvpool_stats_t s = t_stats(pool);
  assert_int_equal(s.workers, 3);
  assert_int_equal(s.running, 3);
  assert_int_equal(s.queued, N - 3);
  for (int i = 0; i < N; i++)
    uv_sem_post(&g->go);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(pool).peak_workers, 3);
  assert_int_equal(atomic_load(&g->ran), N);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
}

static uv_sem_t *exited;
static _Atomic int inits, exits;

static int count_init(void *data) {
  (void)data;
  atomic_fetch_add(&inits, 1);
  return 0;
}

static void post_exit(void *data) {
  (void)data;
  atomic_fetch_add(&exits, 1);
  uv_sem_post(exited);
}

static bool no_workers(void *arg) { return t_stats(arg).workers == 0; }

static void idle_worker_exits_after_timeout(void **state) {
  uvpool_options_t o;
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  exited = t_sem_new(0);
  atomic_store(&exits, 0);
  uvpool_options_init(&o);
  o.idle_timeout_ms = 30;
  o.thread_exit = post_exit;
  uvpool_t *pool = t_pool_new(loop, &o);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  uv_sem_wait(exited); /* the idle timeout, not close, ended it */
  t_run_until(loop, no_workers, pool);
  assert_int_equal(atomic_load(&exits), 1);
  /* A later task starts a fresh worker. */
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool_future_unref(f);
  assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_int_equal(uvpool_future_state(f), UVPOOL_DONE);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  uv_sem_wait(exited);
  t_loop_free(loop);
  t_sem_free(exited);
}

/* Observation window for "nothing happens": a task whose workload is a
 * sleep, on a separate pool. */
static int sleep_ms(void *arg, void **result) {
  (void)result;
  uv_sleep((unsigned)(uintptr_t)arg);
  return 0;
}

static void min_workers_stay_alive_when_idle(void **state) {
  uvpool_options_t o;
  t_gate_t *g;
  uvpool_future_t *w = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  exited = t_sem_new(0);
  atomic_store(&exits, 0);
  uvpool_options_init(&o);
  o.min_workers = 1;
  o.idle_timeout_ms = 20;
  o.thread_exit = post_exit;
  uvpool_t *pool = t_pool_new(loop, &o);
  uvpool_t *timer_pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  uv_sem_wait(&g->started);
  uv_sem_wait(&g->started);
  assert_int_equal(t_stats(pool).workers, 2);
  uv_sem_post(&g->go);
  uv_sem_post(&g->go);
  uv_sem_wait(exited); /* one of the two exits: it is above min */
  assert_int_equal(uvpool_submit(timer_pool, sleep_ms, (void *)200, &w), 0);
  assert_int_equal(uvpool_future_wait(w, -1), 0); /* 10 idle timeouts */
  uvpool_future_unref(w);
  assert_int_equal(atomic_load(&exits), 1);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(t_stats(pool).workers, 1);
  t_pool_close(pool, 0);
  t_pool_close(timer_pool, 0);
  t_loop_free(loop);
  assert_int_equal(atomic_load(&exits), 2);
  t_sem_free(exited);
  t_gate_free(g);
}

static int get_name(void *arg, void **result) {
  (void)result;
  return pthread_getname_np(pthread_self(), arg, 16) == 0 ? 0 : UV_EIO;
}

static void workers_carry_the_name_prefix(void **state) {
  uvpool_options_t o;
  static char name[16]; /* its tasks write it, even after a failure */
  uvpool_future_t *f = NULL;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  uvpool_t *pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, get_name, name, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_int_equal(uvpool_future_status(f), 0);
  assert_string_equal(name, "uvpool-1");
  uvpool_future_unref(f);
  t_pool_close(pool, 0);

  uvpool_options_init(&o);
  o.name = "averyveryverylongname";
  pool = t_pool_new(loop, &o);
  assert_int_equal(uvpool_submit(pool, get_name, name, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_string_equal(name, "averyveryvery-1"); /* 15 characters */
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static int get_stack(void *arg, void **result) {
  pthread_attr_t a;
  size_t size = 0;
  (void)result;
  if (pthread_getattr_np(pthread_self(), &a) != 0)
    return UV_EIO;
  pthread_attr_getstacksize(&a, &size);
  pthread_attr_destroy(&a);
  *(size_t *)arg = size;
  return 0;
}

static void stack_size_is_applied(void **state) {
  uvpool_options_t o;
  static size_t size; /* its task writes it, even after a failure */
  uvpool_future_t *f = NULL;
  (void)state;
  size = 0;
  uv_loop_t *loop = t_loop_new();
  uvpool_options_init(&o);
  /* Larger than the 8 MiB default: glibc may hand a smaller request a
   * cached bigger stack, never a smaller one. */
  o.stack_size = 24u << 20;
  uvpool_t *pool = t_pool_new(loop, &o);
  assert_int_equal(uvpool_submit(pool, get_stack, &size, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  assert_int_equal(uvpool_future_status(f), 0);
  assert_true(size >= (24u << 20));
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
}

static void thread_hooks_run_once_per_worker(void **state) {
  uvpool_options_t o;
  t_gate_t *g;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  exited = t_sem_new(0);
  atomic_store(&inits, 0);
  atomic_store(&exits, 0);
  uvpool_options_init(&o);
  o.thread_init = count_init;
  o.thread_exit = post_exit;
  uvpool_t *pool = t_pool_new(loop, &o);
  for (int i = 0; i < 3; i++)
    assert_int_equal(uvpool_submit(pool, t_work_gate, g, NULL), 0);
  for (int i = 0; i < 3; i++)
    uv_sem_wait(&g->started);
  for (int i = 0; i < 3; i++)
    uv_sem_post(&g->go);
  t_pool_close(pool, 0);
  assert_int_equal(atomic_load(&inits), 3);
  assert_int_equal(atomic_load(&exits), 3);
  t_loop_free(loop);
  t_sem_free(exited);
  t_gate_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(no_worker_starts_before_work),
      T_TEST(submit_wait_submit_reuses_one_worker),
      T_TEST(busy_workers_make_room_for_one_more),
      T_TEST(no_worker_is_added_beside_a_running_one_while_cpus_are_saturated),
      T_TEST(blocked_worker_gets_help_even_when_cpus_are_saturated),
      T_TEST(running_worker_gets_help_after_a_grace_when_saturated),
      T_TEST(never_more_than_max_workers),
      T_TEST(idle_worker_exits_after_timeout),
      T_TEST(min_workers_stay_alive_when_idle),
      T_TEST(workers_carry_the_name_prefix),
      T_TEST(stack_size_is_applied),
      T_TEST(thread_hooks_run_once_per_worker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
