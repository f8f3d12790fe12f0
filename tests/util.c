#include "util.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

static uv_thread_t loop_thread;
int t_cb_order[64];
int t_cb_norder;

/* ---- the arena of gates, semaphores and loops ---------------------- */

enum { T_ARENA = 256, T_LOOPS = 64, T_OPEN_POSTS = 4096 };

/* T_OPENED: a gate or semaphore the teardown opened; T_ABANDONED: a loop
 * a failed test held. Either stays taken for good. */
typedef enum { T_FREE, T_USED, T_OPENED, T_ABANDONED } t_slot_state_t;

static struct {
  uv_once_t once;
  uv_mutex_t mu;
  t_gate_t gate[T_ARENA];
  t_slot_state_t gate_state[T_ARENA];
  uv_sem_t sem[T_ARENA];
  t_slot_state_t sem_state[T_ARENA];
  uv_loop_t loop[T_LOOPS];
  t_slot_state_t loop_state[T_LOOPS];
} arena = {.once = UV_ONCE_INIT};

static void arena_init(void) {
  if (uv_mutex_init(&arena.mu) != 0)
    abort();
}

static int slot_take(t_slot_state_t *states, int n) {
  int i;
  uv_once(&arena.once, arena_init);
  uv_mutex_lock(&arena.mu);
  for (i = 0; i < n && states[i] != T_FREE; i++)
    ;
  if (i < n)
    states[i] = T_USED;
  uv_mutex_unlock(&arena.mu);
  if (i == n)
    fail_msg("the test arena is full: free gates, semaphores and loops");
  return i;
}

static void slot_free(t_slot_state_t *states, int i) {
  uv_mutex_lock(&arena.mu);
  if (states[i] == T_USED) /* an opened or abandoned one stays taken */
    states[i] = T_FREE;
  uv_mutex_unlock(&arena.mu);
}

t_gate_t *t_gate_new(void) {
  int i = slot_take(arena.gate_state, T_ARENA);
  t_gate_t *g = &arena.gate[i];
  assert_int_equal(uv_sem_init(&g->started, 0), 0);
  assert_int_equal(uv_sem_init(&g->go, 0), 0);
  atomic_init(&g->ran, 0);
  return g;
}

void t_gate_free(t_gate_t *g) {
  int i = (int)(g - arena.gate);
  uv_sem_destroy(&g->started);
  uv_sem_destroy(&g->go);
  slot_free(arena.gate_state, i);
}

uv_sem_t *t_sem_new(unsigned value) {
  int i = slot_take(arena.sem_state, T_ARENA);
  assert_int_equal(uv_sem_init(&arena.sem[i], value), 0);
  return &arena.sem[i];
}

void t_sem_free(uv_sem_t *s) {
  int i = (int)(s - arena.sem);
  uv_sem_destroy(s);
  slot_free(arena.sem_state, i);
}

uv_loop_t *t_loop_new(void) {
  int i = slot_take(arena.loop_state, T_LOOPS);
  uv_loop_t *loop = &arena.loop[i];
  assert_int_equal(uv_loop_init(loop), 0);
  loop_thread = uv_thread_self();
  t_cb_norder = 0;
  return loop;
}

void t_loop_free(uv_loop_t *loop) {
  int i = (int)(loop - arena.loop);
  assert_true(i >= 0 && i < T_LOOPS);
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(loop), 0);
  slot_free(arena.loop_state, i);
}

static void sem_flood(uv_sem_t *s) {
  for (int k = 0; k < T_OPEN_POSTS; k++)
    uv_sem_post(s);
}

int t_teardown(void **state) {
  (void)state;
  uv_once(&arena.once, arena_init);
  /* Hooks first: a gated task may be about to call one. */
  uvpool__alloc_fail_at(0, false);
  uvpool__thread_fail_at(0, 0);
  uvpool__monitor_saturated_hook(NULL);
  uvpool__monitor_asleep_hook(NULL);
  uvpool__hook_set(NULL);
  uv_mutex_lock(&arena.mu);
  for (int i = 0; i < T_ARENA; i++) {
    if (arena.gate_state[i] == T_USED) {
      arena.gate_state[i] = T_OPENED;
      sem_flood(&arena.gate[i].started);
      sem_flood(&arena.gate[i].go);
    }
    if (arena.sem_state[i] == T_USED) {
      arena.sem_state[i] = T_OPENED;
      sem_flood(&arena.sem[i]);
    }
  }
  /* Not closed, not run: the failed test's pools may still signal it. */
  for (int i = 0; i < T_LOOPS; i++)
    if (arena.loop_state[i] == T_USED)
      arena.loop_state[i] = T_ABANDONED;
  uv_mutex_unlock(&arena.mu);
  return 0;
}

int t_work_gate(void *arg, void **result) {
  t_gate_t *g = arg;
  atomic_fetch_add(&g->ran, 1);
  uv_sem_post(&g->started);
  uv_sem_wait(&g->go);
  *result = g;
  return 0;
}

int t_work_ok(void *arg, void **result) {
  *result = arg;
  return 0;
}

int t_work_ret(void *arg, void **result) {
  (void)result;
  return (int)(intptr_t)arg;
}

int t_work_count(void *arg, void **result) {
  (void)result;
  atomic_fetch_add((_Atomic int *)arg, 1);
  return 0;
}

int t_work_order(void *arg, void **result) {
  t_order_t *o = arg;
  (void)result;
  o->log[atomic_fetch_add(o->next, 1)] = o->id;
  return 0;
}

bool t_on_loop_thread(void) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &loop_thread) != 0;
}

void t_cb_count(uvpool_future_t *f, void *data) {
  (void)f;
  assert_true(t_on_loop_thread());
  (*(int *)data)++;
}

void t_cb_log(uvpool_future_t *f, void *data) {
  (void)f;
  assert_true(t_on_loop_thread());
  assert_true(t_cb_norder < 64);
  t_cb_order[t_cb_norder++] = (int)(intptr_t)data;
}

uvpool_t *t_pool_new(uv_loop_t *loop, const uvpool_options_t *opts) {
  uvpool_t *pool = NULL;
  assert_int_equal(uvpool_new(loop, opts, &pool), 0);
  assert_non_null(pool);
  return pool;
}

uvpool_t *t_pool_max(uv_loop_t *loop, unsigned max_workers) {
  uvpool_options_t o;
  uvpool_options_init(&o);
  o.max_workers = max_workers;
  return t_pool_new(loop, &o);
}

static void on_closed(uvpool_t *pool, void *data) {
  (void)pool;
  assert_true(t_on_loop_thread());
  *(int *)data = 1;
}

typedef struct {
  uv_timer_t bound;
  int closed;
} child_close_t;

static void child_closed(uvpool_t *pool, void *data) {
  child_close_t *c = data;
  (void)pool;
  c->closed = 1;
  uv_timer_stop(&c->bound); /* the loop then runs down */
}

static void child_bound(uv_timer_t *t) { uv_stop(t->loop); }

int t_child_close(uv_loop_t *loop, uvpool_t *pool) {
  child_close_t c = {.closed = 0};
  if (uvpool_close(pool, 0, child_closed, &c) != 0)
    return -1;
  uv_timer_init(loop, &c.bound); /* before the loop runs child_closed */
  /* A hang detector: generous, since a loaded machine is not a hang. */
  uv_timer_start(&c.bound, child_bound, 20000, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  return c.closed;
}

void t_pool_close(uvpool_t *pool, unsigned flags) {
  int closed = 0;
  uv_loop_t *loop = uvpool_loop(pool);
  assert_int_equal(uvpool_close(pool, flags, on_closed, &closed), 0);
  while (!closed)
    uv_run(loop, UV_RUN_ONCE);
}

void t_run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg) {
  for (long i = 0; i < 50000000L; i++) {
    if (pred(arg))
      return;
    uv_run(loop, UV_RUN_NOWAIT);
    sched_yield();
  }
  fail_msg("condition not reached");
}

uvpool_stats_t t_stats(uvpool_t *pool) {
  uvpool_stats_t s;
  memset(&s, 0, sizeof(s));
  assert_int_equal(uvpool_stats(pool, &s), 0);
  return s;
}

void t_gated_open(t_gated_t *g, unsigned workers) {
  uvpool_options_t o;
  g->loop = t_loop_new();
  g->hold = t_gate_new();
  uvpool_options_init(&o);
  o.max_workers = workers;
  g->pool = t_pool_new(g->loop, &o);
  assert_int_equal(uvpool_submit(g->pool, t_work_gate, g->hold, &g->holder), 0);
  uv_sem_wait(&g->hold->started);
}

void t_gated_release(t_gated_t *g) { uv_sem_post(&g->hold->go); }

void t_gated_close(t_gated_t *g) {
  uvpool_future_unref(g->holder);
  t_pool_close(g->pool, 0);
  t_loop_free(g->loop);
  t_gate_free(g->hold);
}

void t_quiet_start(t_quiet_t *q, uvpool_t *pool, unsigned n) {
  q->first = t_gate_new();
  q->last = t_gate_new();
  assert_int_equal(uvpool_submit(pool, t_work_gate, q->first, &q->a), 0);
  uv_sem_wait(&q->first->started);
  for (unsigned i = 0; i < n; i++)
    assert_int_equal(uvpool_submit(pool, t_work_ok, NULL, NULL), 0);
  assert_int_equal(uvpool_submit(pool, t_work_gate, q->last, &q->z), 0);
  uv_sem_post(&q->first->go);
  uv_sem_wait(&q->last->started);
}

void t_quiet_finish(t_quiet_t *q) {
  uv_sem_post(&q->last->go);
  assert_int_equal(uvpool_future_wait(q->z, -1), 0);
  uvpool_future_unref(q->a);
  uvpool_future_unref(q->z);
  t_gate_free(q->first);
  t_gate_free(q->last);
}
