/* Groups: pools on several loops that share one set of workers
 * (uvpool_options_t.share). Two loops, each with its pool; unless a test
 * says otherwise, both loops run on the test's thread, in turns, so that
 * a callback can tell which loop runs it. */
#include "util.h"

#include <pthread.h>
#include <string.h>

static uv_loop_t *running_loop; /* the loop whose uv_run is on the stack */

static void run_turn(uv_loop_t *loop) {
  uv_loop_t *was = running_loop;
  running_loop = loop;
  uv_run(loop, UV_RUN_NOWAIT);
  running_loop = was;
}

/* Runs both loops in turns until pred(arg); fails after a bound. */
static void run_both_until(uv_loop_t *a, uv_loop_t *b, bool (*pred)(void *),
                           void *arg) {
  for (long i = 0; i < 20000000L; i++) {
    if (pred(arg))
      return;
    run_turn(a);
    run_turn(b);
    sched_yield();
  }
  fail_msg("condition not reached");
}

static bool int_reaches(void *arg) { return *(int *)arg != 0; }

typedef struct {
  uv_loop_t *l1, *l2;
  uvpool_t *p1, *p2;
} two_t;

static void two_open(two_t *t, unsigned max_workers) {
  uvpool_options_t o;
  t->l1 = t_loop_new();
  t->l2 = t_loop_new();
  t->p1 = t_pool_max(t->l1, max_workers);
  uvpool_options_init(&o);
  o.share = t->p1;
  assert_int_equal(uvpool_new(t->l2, &o, &t->p2), 0);
}

static void on_closed(uvpool_t *pool, void *data) {
  (void)pool;
  *(int *)data = 1;
}

static void close_both_run(two_t *t, uvpool_t *p) {
  int closed = 0;
  assert_int_equal(uvpool_close(p, 0, on_closed, &closed), 0);
  run_both_until(t->l1, t->l2, int_reaches, &closed);
}

/* Closes p2 then p1, and frees both loops (uv_loop_close == 0). */
static void two_close(two_t *t) {
  close_both_run(t, t->p2);
  close_both_run(t, t->p1);
  t_loop_free(t->l1);
  t_loop_free(t->l2);
}

/* ---- creating and options ----------------------------------------------- */

static char seen_name[16];

static int work_thread_name(void *arg, void **result) {
  (void)arg;
  (void)result;
  pthread_getname_np(pthread_self(), seen_name, sizeof(seen_name));
  return 0;
}

static void on_done_flag(uvpool_future_t *f, void *data) {
  (void)f;
  *(int *)data = 1;
}

static void sharing_pool_runs_on_the_first_pools_workers(void **state) {
  uvpool_options_t o;
  uv_loop_t *l1 = t_loop_new(), *l2 = t_loop_new();
  uvpool_t *p1, *p2;
  int done = 0;
  (void)state;
  uvpool_options_init(&o);
  o.name = "grp";
  o.max_workers = 1;
  assert_int_equal(uvpool_new(l1, &o, &p1), 0);
  uvpool_options_init(&o);
  o.share = p1;
  assert_int_equal(uvpool_new(l2, &o, &p2), 0);
  assert_int_equal(
      uvpool_submit_cb(p2, work_thread_name, NULL, on_done_flag, &done), 0);
  run_both_until(l1, l2, int_reaches, &done);
  assert_string_equal(seen_name, "grp-1");
  assert_int_equal(t_stats(p2).completed, 1);
  assert_int_equal(t_stats(p1).completed, 0);
  assert_int_equal(t_stats(p1).peak_workers, 1);
  assert_int_equal(t_stats(p2).peak_workers, 1);
  two_t t = {l1, l2, p1, p2};
  two_close(&t);
}

static int init_ok(void *data) {
  (void)data;
  return 0;
}

static void exit_noop(void *data) { (void)data; }

static void worker_options_on_a_sharing_pool_are_einval(void **state) {
  uv_loop_t *l1 = t_loop_new(), *l2 = t_loop_new();
  uvpool_t *p1 = t_pool_max(l1, 2);
  uvpool_t *out = NULL;
  (void)state;
  for (int field = 0; field < 9; field++) {
    uvpool_options_t o;
    uvpool_options_init(&o);
    o.share = p1;
    switch (field) {
    case 0:
      o.max_workers = 1;
      break;
    case 1:
      o.min_workers = 1;
      break;
    case 2:
      o.idle_timeout_ms = 5;
      break;
    case 3:
      o.stack_size = 1 << 20;
      break;
    case 4:
      o.name = "x";
      break;
    case 5:
      o.thread_init = init_ok;
      break;
    case 6:
      o.thread_exit = exit_noop;
      break;
    case 7:
      o.thread_data = &o;
      break;
    default:
      o.spin_us = 0;
      break;
    }
    assert_int_equal(uvpool_new(l2, &o, &out), UV_EINVAL);
    assert_null(out); /* nothing created */
  }
  /* Per-pool options are fine. */
  {
    uvpool_options_t o;
    uvpool_t *p2;
    uvpool_options_init(&o);
    o.share = p1;
    o.max_queued = 3;
    o.exit_timeout_ms = 10;
    o.flags = UVPOOL_EXIT_CANCEL_PENDING;
    assert_int_equal(uvpool_new(l2, &o, &p2), 0);
    two_t t = {l1, l2, p1, p2};
    two_close(&t);
  }
}

static void sharing_a_closing_pool_is_eshutdown(void **state) {
  uv_loop_t *l1 = t_loop_new(), *l2 = t_loop_new();
  uvpool_t *p1 = t_pool_max(l1, 1), *p2 = NULL;
  uvpool_options_t o;
  int closed = 0;
  (void)state;
  assert_int_equal(uvpool_close(p1, 0, on_closed, &closed), 0);
  uvpool_options_init(&o);
  o.share = p1;
  assert_int_equal(uvpool_new(l2, &o, &p2), UV_ESHUTDOWN);
  assert_null(p2);
  run_both_until(l1, l2, int_reaches, &closed);
  t_loop_free(l1);
  t_loop_free(l2);
}

/* ---- one run queue, one cap, one set of lanes -------------------------- */

static void max_workers_caps_the_whole_group(void **state) {
  two_t t;
  t_gate_t *g[4];
  uvpool_future_t *f[4];
  (void)state;
  two_open(&t, 2);
  for (int i = 0; i < 4; i++) {
    g[i] = t_gate_new();
    assert_int_equal(
        uvpool_submit(i % 2 ? t.p2 : t.p1, t_work_gate, g[i], &f[i]), 0);
  }
  uv_sem_wait(&g[0]->started);
  uv_sem_wait(&g[1]->started);
  {
    uvpool_stats_t s1 = t_stats(t.p1), s2 = t_stats(t.p2);
    assert_int_equal(s1.workers, 2);
    assert_int_equal(s2.workers, 2);
    assert_int_equal(s1.running + s2.running, 2);
    assert_int_equal(s1.queued + s2.queued, 2);
  }
  for (int i = 0; i < 4; i++) {
    uv_sem_post(&g[i]->go);
    assert_int_equal(uvpool_future_wait(f[i], -1), 0);
    uvpool_future_unref(f[i]);
  }
  assert_true(t_stats(t.p1).peak_workers <= 2);
  two_close(&t);
  for (int i = 0; i < 4; i++)
    t_gate_free(g[i]);
}

static _Atomic int order_next;
static int order_log[8];
static t_order_t order_slot[8];

static void one_run_queue_orders_priorities_across_pools(void **state) {
  two_t t;
  t_gate_t *hold = t_gate_new();
  uvpool_future_t *holder, *f[4];
  /* Submitted in this order: p1 prio 0, p2 prio 5, p1 prio 5, p2 prio 0. */
  static const int prio[4] = {0, 5, 5, 0};
  (void)state;
  two_open(&t, 1);
  assert_int_equal(uvpool_submit(t.p1, t_work_gate, hold, &holder), 0);
  uv_sem_wait(&hold->started);
  atomic_store(&order_next, 0);
  for (int i = 0; i < 4; i++) {
    uvpool_task_options_t so;
    uvpool_task_options_init(&so);
    so.priority = prio[i];
    order_slot[i] = (t_order_t){&order_next, order_log, i};
    assert_int_equal(uvpool_submit_ex(i == 1 || i == 3 ? t.p2 : t.p1, &so,
                                      t_work_order, &order_slot[i], &f[i]),
                     0);
  }
  uv_sem_post(&hold->go);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(uvpool_future_wait(f[i], -1), 0);
    uvpool_future_unref(f[i]);
  }
  uvpool_future_unref(holder);
  assert_int_equal(order_log[0], 1);
  assert_int_equal(order_log[1], 2);
  assert_int_equal(order_log[2], 0);
  assert_int_equal(order_log[3], 3);
  two_close(&t);
  t_gate_free(hold);
}

static void lane_of_one_pool_caps_tasks_of_both(void **state) {
  two_t t;
  unsigned lane;
  t_gate_t *g1 = t_gate_new(), *g2 = t_gate_new();
  uvpool_future_t *f1, *f2;
  uvpool_task_options_t so;
  (void)state;
  two_open(&t, 2);
  assert_int_equal(uvpool_lane_new(t.p1, 1, &lane), 0);
  uvpool_task_options_init(&so);
  so.lane = lane;
  assert_int_equal(uvpool_submit_ex(t.p1, &so, t_work_gate, g1, &f1), 0);
  assert_int_equal(uvpool_submit_ex(t.p2, &so, t_work_gate, g2, &f2), 0);
  uv_sem_wait(&g1->started);
  /* Two workers may run, the lane admits one: p2's task waits. */
  assert_int_equal(t_stats(t.p2).queued, 1);
  assert_int_equal(t_stats(t.p2).running, 0);
  uv_sem_post(&g1->go);
  uv_sem_wait(&g2->started);
  uv_sem_post(&g2->go);
  assert_int_equal(uvpool_future_wait(f1, -1), 0);
  assert_int_equal(uvpool_future_wait(f2, -1), 0);
  uvpool_future_unref(f1);
  uvpool_future_unref(f2);
  two_close(&t);
  t_gate_free(g1);
  t_gate_free(g2);
}

/* ---- callbacks and stats ------------------------------------------------ */

typedef struct {
  uv_loop_t *expect;
  int ran, wrong;
} loop_check_t;

static void on_done_check_loop(uvpool_future_t *f, void *data) {
  loop_check_t *c = data;
  (void)f;
  if (running_loop != c->expect)
    c->wrong++;
  c->ran++;
}

static bool both_ran(void *arg) {
  loop_check_t *c = arg;
  return c[0].ran == 10 && c[1].ran == 10;
}

static void callbacks_run_on_their_own_pools_loop(void **state) {
  two_t t;
  loop_check_t c[2];
  (void)state;
  two_open(&t, 2);
  c[0] = (loop_check_t){t.l1, 0, 0};
  c[1] = (loop_check_t){t.l2, 0, 0};
  for (int i = 0; i < 10; i++) {
    assert_int_equal(
        uvpool_submit_cb(t.p1, t_work_ok, NULL, on_done_check_loop, &c[0]), 0);
    assert_int_equal(
        uvpool_submit_cb(t.p2, t_work_ok, NULL, on_done_check_loop, &c[1]), 0);
  }
  run_both_until(t.l1, t.l2, both_ran, c);
  assert_int_equal(c[0].wrong, 0);
  assert_int_equal(c[1].wrong, 0);
  two_close(&t);
}

static void stats_count_own_tasks_and_group_workers(void **state) {
  two_t t;
  uvpool_future_t *f;
  uvpool_stats_t s1, s2;
  (void)state;
  two_open(&t, 3);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(uvpool_submit(t.p2, t_work_ok, NULL, &f), 0);
    assert_int_equal(uvpool_future_wait(f, -1), 0);
    uvpool_future_unref(f);
  }
  assert_int_equal(
      uvpool_submit(t.p1, t_work_ret, (void *)(intptr_t)UV_EIO, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool_future_unref(f);
  s1 = t_stats(t.p1);
  s2 = t_stats(t.p2);
  assert_int_equal(s1.submitted, 1);
  assert_int_equal(s1.failed, 1);
  assert_int_equal(s1.completed, 0);
  assert_int_equal(s2.submitted, 5);
  assert_int_equal(s2.completed, 5);
  assert_int_equal(s2.failed, 0);
  assert_int_equal(s1.workers, s2.workers);
  assert_int_equal(s1.peak_workers, s2.peak_workers);
  two_close(&t);
}

/* ---- close -------------------------------------------------------------- */

static void close_cancels_only_its_own_queued_tasks(void **state) {
  two_t t;
  t_gate_t *hold = t_gate_new();
  uvpool_future_t *holder, *a, *b;
  int closed = 0;
  (void)state;
  two_open(&t, 1);
  assert_int_equal(uvpool_submit(t.p1, t_work_gate, hold, &holder), 0);
  uv_sem_wait(&hold->started);
  assert_int_equal(uvpool_submit(t.p1, t_work_ok, NULL, &a), 0);
  assert_int_equal(uvpool_submit(t.p2, t_work_ok, NULL, &b), 0);
  assert_int_equal(
      uvpool_close(t.p2, UVPOOL_CANCEL_PENDING, on_closed, &closed), 0);
  assert_int_equal(uvpool_future_state(b), UVPOOL_CANCELLED);
  assert_int_equal(uvpool_future_state(a), UVPOOL_PENDING);
  run_both_until(t.l1, t.l2, int_reaches, &closed); /* p2 closes meanwhile */
  assert_int_equal(uvpool_future_state(a), UVPOOL_PENDING);
  uv_sem_post(&hold->go);
  assert_int_equal(uvpool_future_wait(a, -1), 0);
  assert_int_equal(uvpool_future_state(a), UVPOOL_DONE);
  uvpool_future_unref(a);
  uvpool_future_unref(b);
  uvpool_future_unref(holder);
  close_both_run(&t, t.p1);
  t_loop_free(t.l1);
  t_loop_free(t.l2);
  t_gate_free(hold);
}

static bool closed_flag(void *arg) { return *(int *)arg != 0; }

static void close_waits_for_its_own_running_task_only(void **state) {
  two_t t;
  t_gate_t *mine = t_gate_new(), *other = t_gate_new();
  uvpool_future_t *fm, *fo;
  int closed = 0;
  (void)state;
  two_open(&t, 2);
  assert_int_equal(uvpool_submit(t.p2, t_work_gate, mine, &fm), 0);
  assert_int_equal(uvpool_submit(t.p1, t_work_gate, other, &fo), 0);
  uv_sem_wait(&mine->started);
  uv_sem_wait(&other->started);
  assert_int_equal(uvpool_close(t.p2, 0, on_closed, &closed), 0);
  for (int i = 0; i < 100; i++) { /* the close may not finish yet */
    run_turn(t.l1);
    run_turn(t.l2);
  }
  assert_int_equal(closed, 0);
  uv_sem_post(&mine->go);
  /* p1's task still runs: p2's close finishes anyway. */
  run_both_until(t.l1, t.l2, closed_flag, &closed);
  assert_int_equal(uvpool_future_state(fo), UVPOOL_RUNNING);
  uv_sem_post(&other->go);
  assert_int_equal(uvpool_future_wait(fo, -1), 0);
  uvpool_future_unref(fm);
  uvpool_future_unref(fo);
  close_both_run(&t, t.p1);
  t_loop_free(t.l1);
  t_loop_free(t.l2);
  t_gate_free(mine);
  t_gate_free(other);
}

static void first_pool_may_close_first(void **state) {
  two_t t;
  uvpool_future_t *f;
  uvpool_t *p3;
  uvpool_options_t o;
  (void)state;
  two_open(&t, 2);
  close_both_run(&t, t.p1);
  /* The workers stay for p2, which still takes work and can be shared. */
  assert_int_equal(uvpool_submit(t.p2, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool_future_unref(f);
  uvpool_options_init(&o);
  o.share = t.p2;
  assert_int_equal(uvpool_new(t.l1, &o, &p3), 0);
  assert_int_equal(uvpool_submit(p3, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool_future_unref(f);
  close_both_run(&t, p3);
  close_both_run(&t, t.p2);
  t_loop_free(t.l1);
  t_loop_free(t.l2);
}

/* A worker keeps settled fire-and-forget futures for a batch push; one
 * of another pool's is pushed before the worker runs this pool's task, so
 * the other loop never waits for it. */
static void loop_never_waits_for_another_pools_task(void **state) {
  two_t t;
  t_gate_t *hold = t_gate_new();
  uvpool_future_t *holder;
  int rc = 1;
  (void)state;
  two_open(&t, 1);
  assert_int_equal(uvpool_submit(t.p2, t_work_ok, NULL, NULL), 0);
  assert_int_equal(uvpool_submit(t.p1, t_work_gate, hold, &holder), 0);
  uv_sem_wait(&hold->started); /* p2's task ran before, on this worker */
  for (int i = 0; i < 100000 && rc != 0; i++) {
    rc = uv_run(t.l2, UV_RUN_NOWAIT);
    sched_yield();
  }
  assert_int_equal(rc, 0); /* loop 2 has nothing left while p1's task runs */
  assert_int_equal(t_stats(t.p2).completed, 1);
  uv_sem_post(&hold->go);
  assert_int_equal(uvpool_future_wait(holder, -1), 0);
  uvpool_future_unref(holder);
  two_close(&t);
  t_gate_free(hold);
}

/* ---- regressions -------------------------------------------------------- */

static uvpool_t *joined_root; /* the group whose next member is held */

static bool no_workers(void *arg) { return t_stats(arg).workers == 0; }

/* While a new member is not yet set up, the group's last worker retires:
 * its leave pokes every member, and must skip the half-made one. */
static void on_joined(uvpool__hook_point_t point, const void *root) {
  if (point != UVPOOL__HOOK_POOL_JOINED || root != joined_root)
    return;
  for (long i = 0; i < 20000000L && !no_workers(joined_root); i++)
    sched_yield(); /* the idle timeout (1 ms) passes */
}

static void a_worker_leaving_skips_a_member_not_yet_set_up(void **state) {
  uv_loop_t *l1 = t_loop_new(), *l2 = t_loop_new();
  uvpool_options_t o;
  uvpool_t *p1, *p2;
  uvpool_future_t *f;
  (void)state;
  uvpool_options_init(&o);
  o.max_workers = 1;
  o.idle_timeout_ms = 1;
  assert_int_equal(uvpool_new(l1, &o, &p1), 0);
  assert_int_equal(uvpool_submit(p1, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool_future_unref(f);
  joined_root = p1;
  uvpool__hook_set(on_joined);
  uvpool_options_init(&o);
  o.share = p1;
  assert_int_equal(uvpool_new(l2, &o, &p2), 0);
  uvpool__hook_set(NULL);
  assert_true(no_workers(p1)); /* it left while p2 was being made */
  assert_int_equal(uvpool_submit(p2, t_work_ok, NULL, &f), 0);
  assert_int_equal(uvpool_future_wait(f, -1), 0);
  uvpool_future_unref(f);
  two_t t = {l1, l2, p1, p2};
  two_close(&t);
}

/* A closing member's task held for a dependency in another group (on the
 * same loop, as dependencies must be) is accepted work: a sibling's close must
 * not stop the workers it needs. */
static void
held_task_of_a_closing_member_runs_after_the_others_closed(void **state) {
  two_t t;
  uvpool_t *other; /* on p2's loop, a group of its own */
  t_gate_t *dep_gate = t_gate_new();
  uvpool_future_t *dep, *held;
  int closed2 = 0, closed1 = 0;
  (void)state;
  two_open(&t, 1);
  other = t_pool_max(t.l2, 1);
  assert_int_equal(uvpool_submit(other, t_work_gate, dep_gate, &dep), 0);
  assert_int_equal(uvpool_submit_after(t.p2, &dep, 1, t_work_ok, NULL, &held),
                   0);
  assert_int_equal(uvpool_close(t.p2, 0, on_closed, &closed2), 0);
  assert_int_equal(uvpool_close(t.p1, 0, on_closed, &closed1), 0);
  run_both_until(t.l1, t.l2, int_reaches, &closed1);
  assert_int_equal(closed2, 0); /* p2 waits for its held task */
  uv_sem_post(&dep_gate->go);
  assert_int_equal(uvpool_future_wait(held, -1), 0);
  assert_int_equal(uvpool_future_state(held), UVPOOL_DONE);
  run_both_until(t.l1, t.l2, int_reaches, &closed2);
  uvpool_future_unref(held);
  uvpool_future_unref(dep);
  t_pool_close(other, 0);
  t_loop_free(t.l1);
  t_loop_free(t.l2);
  t_gate_free(dep_gate);
}

/* ---- two loops in two threads ------------------------------------------- */

#define CROSS_TASKS 2000

static _Atomic int cross_cbs[2]; /* callbacks run on loop 1, on loop 2 */
static struct {
  uv_loop_t *loop;
  uvpool_t *other;
  uv_sem_t *go;
  int run_rc;
  _Atomic int submit_rc; /* read by the test thread while it runs */
} cross;

static void on_cross_done(uvpool_future_t *f, void *data) {
  (void)f;
  atomic_fetch_add((_Atomic int *)data, 1);
}

/* Loop 2's thread: submits to pool 1 (its callbacks run on loop 1), then
 * runs loop 2 until nothing of pool 2 is undelivered. */
static void cross_thread(void *arg) {
  (void)arg;
  uv_sem_wait(cross.go);
  for (int i = 0; i < CROSS_TASKS; i++) {
    int rc = uvpool_submit_cb(cross.other, t_work_ok, NULL, on_cross_done,
                              &cross_cbs[0]);
    atomic_store(&cross.submit_rc, rc);
    if (rc != 0)
      break;
  }
  cross.run_rc = uv_run(cross.loop, UV_RUN_DEFAULT);
}

static bool loop1_got_all(void *arg) {
  (void)arg;
  if (atomic_load(&cross.submit_rc) != 0)
    return true;
  return atomic_load(&cross_cbs[0]) == CROSS_TASKS;
}

static void two_loops_in_two_threads_submit_to_each_others_pools(void **state) {
  two_t t;
  uv_thread_t tid;
  t_gate_t *hold = t_gate_new(), *hold1 = t_gate_new();
  uvpool_future_t *holder, *holder1;
  (void)state;
  two_open(&t, 4);
  atomic_store(&cross_cbs[0], 0);
  atomic_store(&cross_cbs[1], 0);
  cross.loop = t.l2;
  cross.other = t.p1;
  cross.go = t_sem_new(0);
  cross.run_rc = -1;
  /* Work outstanding before a loop runs keeps it running: a submit from
   * another thread cannot reference the loop's handle (libuv's rule), so
   * each loop keeps a task of its own thread until the other's are in. */
  assert_int_equal(uvpool_submit(t.p2, t_work_gate, hold, &holder), 0);
  assert_int_equal(uvpool_submit(t.p1, t_work_gate, hold1, &holder1), 0);
  assert_int_equal(uv_thread_create(&tid, cross_thread, NULL), 0);
  uv_sem_post(cross.go);
  for (int i = 0; i < CROSS_TASKS; i++)
    assert_int_equal(
        uvpool_submit_cb(t.p2, t_work_ok, NULL, on_cross_done, &cross_cbs[1]),
        0);
  t_run_until(t.l1, loop1_got_all, NULL);
  assert_int_equal(atomic_load(&cross.submit_rc), 0);
  uv_sem_post(&hold1->go);
  uv_sem_post(&hold->go);
  assert_int_equal(uv_thread_join(&tid), 0);
  assert_int_equal(cross.run_rc, 0);
  assert_int_equal(atomic_load(&cross_cbs[1]), CROSS_TASKS);
  uvpool_future_unref(holder);
  uvpool_future_unref(holder1);
  /* Loop 2 back on this thread for the close, as libuv allows. */
  two_close(&t);
  t_sem_free(cross.go);
  t_gate_free(hold);
  t_gate_free(hold1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T_TEST(sharing_pool_runs_on_the_first_pools_workers),
      T_TEST(worker_options_on_a_sharing_pool_are_einval),
      T_TEST(sharing_a_closing_pool_is_eshutdown),
      T_TEST(max_workers_caps_the_whole_group),
      T_TEST(one_run_queue_orders_priorities_across_pools),
      T_TEST(lane_of_one_pool_caps_tasks_of_both),
      T_TEST(callbacks_run_on_their_own_pools_loop),
      T_TEST(stats_count_own_tasks_and_group_workers),
      T_TEST(close_cancels_only_its_own_queued_tasks),
      T_TEST(close_waits_for_its_own_running_task_only),
      T_TEST(first_pool_may_close_first),
      T_TEST(loop_never_waits_for_another_pools_task),
      T_TEST(a_worker_leaving_skips_a_member_not_yet_set_up),
      T_TEST(held_task_of_a_closing_member_runs_after_the_others_closed),
      T_TEST(two_loops_in_two_threads_submit_to_each_others_pools),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
