/* Shared test helpers: loops, gates (semaphores a task blocks on), work
 * functions and callback counters. No helper sleeps to synchronise. */
#ifndef UVPOOL_TEST_UTIL_H
#define UVPOOL_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the three headers above first. */
#include <cmocka.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "internal.h" /* test hooks: uvpool__alloc_fail_at, ... */
#include "uvpool.h"

/* A gate: work posts `started`, then blocks until the test posts `go`. */
typedef struct {
  uv_sem_t started;
  uv_sem_t go;
  _Atomic int ran;
} t_gate_t;

/* Gates and semaphores come from a fixed arena in util.c, never from a
 * test's stack. When an assertion fails, cmocka leaves the test function
 * at once; the teardown every test runs (T_TEST) then opens every gate and
 * semaphore the test still holds, so that the tasks and threads it gated
 * finish, and the program's exit (which drains every pool) does not wait
 * for them forever. An opened one is never handed out again. */
t_gate_t *t_gate_new(void);
void t_gate_free(t_gate_t *g);
uv_sem_t *t_sem_new(unsigned value);
void t_sem_free(uv_sem_t *s);
/* The teardown of every test: opens what a failed test left closed,
 * abandons the loops it held, and removes the test hooks it may have left
 * installed. */
int t_teardown(void **state);
#define T_TEST(f) cmocka_unit_test_teardown(f, t_teardown)
#define T_TEST_SETUP(f, setup)                                                 \
  cmocka_unit_test_setup_teardown(f, setup, t_teardown)

int t_work_gate(void *arg, void **result); /* arg: t_gate_t* */

/* Returns 0 and stores arg as the result. */
int t_work_ok(void *arg, void **result);
/* Returns (int)(intptr_t)arg. */
int t_work_ret(void *arg, void **result);
/* Increments the _Atomic int at arg. */
int t_work_count(void *arg, void **result);
/* Appends its index to a shared order log: arg is a t_order_t slot. */
typedef struct {
  _Atomic int *next;
  int *log;
  int id;
} t_order_t;
int t_work_order(void *arg, void **result);

/* Done callback: asserts it runs on the loop thread, increments *(int*)data. */
void t_cb_count(uvpool_future_t *f, void *data);
/* Done callback that appends data (an int cast) to the global order log. */
void t_cb_log(uvpool_future_t *f, void *data);
extern int t_cb_order[64];
extern int t_cb_norder;

/* Loops come from an arena beside the gates', never from a test's stack:
 * the pools of a failed test still signal their loop (uv_async_send
 * through the pool's handle) when the tasks the teardown let go finish.
 * t_teardown marks every loop a test still holds as abandoned: it is
 * never closed (its pools may still point at it), touched or handed out
 * again. For the same reason, what a task or another thread reads or
 * writes is static, and no other test's, whenever an assertion can fail
 * while they may still run (work and thread arguments, order logs); a
 * done callback's data may stay on the stack, since an abandoned loop
 * never runs again.
 *
 * t_loop_new takes a loop, initialises it, remembers the loop thread for
 * t_cb_count and resets the order log. t_loop_free runs the loop to
 * completion (asserting 0), asserts uv_loop_close() == 0 and gives the
 * loop back. */
uv_loop_t *t_loop_new(void);
void t_loop_free(uv_loop_t *loop);

uvpool_t *t_pool_new(uv_loop_t *loop, const uvpool_options_t *opts);
/* A pool with default options but at most max_workers workers. */
uvpool_t *t_pool_max(uv_loop_t *loop, unsigned max_workers);
/* In a fork child (no assertions there): closes the inherited pool and
 * runs its loop until the close finishes, bounded at 20 s by a timer (a
 * bound, not a sync). Returns 1 if the close finished, 0 if not, -1 if
 * uvpool_close refused. */
int t_child_close(uv_loop_t *loop, uvpool_t *pool);
/* Closes the pool with flags, runs the loop until the close callback ran. */
void t_pool_close(uvpool_t *pool, unsigned flags);

/* Runs the loop (UV_RUN_NOWAIT rounds, yielding the CPU) until pred(arg)
 * holds; fails the test after a bound of rounds. For conditions that
 * become true on another thread and need no loop wake-up to be seen. */
void t_run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg);

uvpool_stats_t t_stats(uvpool_t *pool);

/* A gated pool: its own loop (from the arena), at most `workers` workers,
 * one of them held by a gate task (holder), so that later tasks queue. */
typedef struct {
  uv_loop_t *loop;
  uvpool_t *pool;
  t_gate_t *hold;
  uvpool_future_t *holder;
} t_gated_t;

void t_gated_open(t_gated_t *g, unsigned workers);
/* Lets the holder finish. */
void t_gated_release(t_gated_t *g);
/* Closes the pool and frees the loop (t_loop_free). */
void t_gated_close(t_gated_t *g);

/* A one-worker pool's worker runs n fire-and-forget tasks in one go, with
 * no idle moment between them, then waits in a gated task: a first gated
 * task holds it while the rest queue. t_quiet_start returns once the
 * worker waits in the last task; t_quiet_finish lets it go, waits for it
 * and drops both futures. */
typedef struct {
  t_gate_t *first, *last;
  uvpool_future_t *a, *z;
} t_quiet_t;

void t_quiet_start(t_quiet_t *q, uvpool_t *pool, unsigned n);
void t_quiet_finish(t_quiet_t *q);

bool t_on_loop_thread(void);

#endif
