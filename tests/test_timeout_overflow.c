/* Timeouts too large for the clock mean forever, not a wrapped sum:
 * uvpool_future_wait(f, INT64_MAX) blocks, and deadline_ms = INT64_MAX
 * never expires. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util.h"

#include <sched.h>

/* Opens the gate once the waiter sleeps in the futex (F_WAITERS set), so
 * the wait must outlast the task; gives up when told to stop. */
typedef struct {
  uvpool_future_t *f;
  t_gate_t *g;
  _Atomic int stop;
  int opened;
} opener_t;

static void opener_main(void *arg) {
  opener_t *o = arg;
  while (!atomic_load(&o->stop)) {
    if (atomic_load(&o->f->state) & UVPOOL__F_WAITERS) {
      o->opened = 1;
      uv_sem_post(&o->g->go);
      return;
    }
    sched_yield();
  }
}

static void wait_int64_max(void **state) {
  uvpool_t *pool;
  uvpool_future_t *f = NULL;
  t_gate_t *g;
  int rc;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  pool = t_pool_new(loop, NULL);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &f), 0);
  opener_t op = {f, g, 0, 0};
  uv_thread_t tid;
  uv_sem_wait(&g->started);
  assert_int_equal(uv_thread_create(&tid, opener_main, &op), 0);
  rc = uvpool_future_wait(f, INT64_MAX); /* must block until settled */
  atomic_store(&op.stop, 1);
  uv_thread_join(&tid);
  print_message("uvpool_future_wait(unsettled, INT64_MAX) = %s\n",
                rc == 0 ? "0" : uv_err_name(rc));
  if (!op.opened)
    uv_sem_post(&g->go);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
  assert_int_equal(rc, 0);
}

static bool no_deadlines(void *arg) {
  uvpool_t *p = arg;
  bool r;
  uv_mutex_lock(&p->g->mu);
  r = uvpool__list_empty(&p->g->dl.list);
  uv_mutex_unlock(&p->g->mu);
  return r;
}

static void deadline_int64_max(void **state) {
  uvpool_options_t o;
  uvpool_task_options_t to;
  uvpool_t *pool;
  uvpool_future_t *blocker = NULL, *f = NULL;
  t_gate_t *g;
  uvpool_state_t st;
  (void)state;
  uv_loop_t *loop = t_loop_new();
  g = t_gate_new();
  uvpool_options_init(&o);
  o.max_workers = 1;
  pool = t_pool_new(loop, &o);
  assert_int_equal(uvpool_submit(pool, t_work_gate, g, &blocker), 0);
  uv_sem_wait(&g->started);
  uvpool_task_options_init(&to);
  to.deadline_ms = INT64_MAX;
  assert_int_equal(uvpool_submit_ex(pool, &to, t_work_ok, NULL, &f), 0);
  /* Let the deadline thread act on the list before the worker frees up. */
  t_run_until(loop, no_deadlines, pool);
  uv_sem_post(&g->go);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  st = uvpool_future_state(f);
  print_message("deadline_ms=INT64_MAX task: state %d status %d\n", st,
                uvpool_future_status(f));
  uvpool_future_unref(blocker);
  uvpool_future_unref(f);
  t_pool_close(pool, 0);
  t_loop_free(loop);
  t_gate_free(g);
  assert_int_equal(st, UVPOOL_DONE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(wait_int64_max),
      T_TEST(deadline_int64_max),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
