/* uvpool: an executor for libuv loops.
 *
 * Blocking work runs on a pool of worker threads; each task gets a
 * reference-counted future; completions are posted back to the loop through
 * one uv_async_t handle and their callbacks run on the loop thread.
 *
 * Conventions used by every declaration below:
 * - Every int return is 0 or a negative libuv error code (UV_EINVAL, ...),
 *   so uv_strerror() and uv_err_name() describe it.
 * - "Any thread" includes worker threads (inside work) and the loop thread
 *   (inside done callbacks).
 * - "Loop thread" is the thread that runs the pool's loop, as libuv has it:
 *   a loop may be used by one thread at a time and may move between
 *   threads between runs. The pool sees which thread runs its loop at every
 *   iteration, before the loop polls; before the loop ever ran, the thread
 *   that created the pool counts as the loop thread. A "loop thread only"
 *   call made on another thread while the loop runs there (polls, or runs
 *   the pool's callbacks) returns UV_EINVAL; made while no thread runs the
 *   loop, it makes the calling thread the loop's next thread.
 * - Nothing here blocks unless its comment says "Blocks".
 * - Misuse that would corrupt memory (releasing a future or a pool
 *   reference more often than it was taken) is caught where it can be:
 *   the call writes "uvpool: <function>: <what>" to stderr and aborts, as
 *   libuv's own assertions do.
 * - Platform: Linux (futex-based waiting, pthread thread names).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef UVPOOL_H
#define UVPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(UVPOOL_STATIC)
#define UVPOOL_EXTERN
#elif defined(UVPOOL_BUILDING)
#define UVPOOL_EXTERN __attribute__((visibility("default")))
#else
#define UVPOOL_EXTERN
#endif

#define UVPOOL_VERSION_MAJOR 0
#define UVPOOL_VERSION_MINOR 2
#define UVPOOL_VERSION_PATCH 0

typedef struct uvpool_s uvpool_t;               /* opaque */
typedef struct uvpool_future_s uvpool_future_t; /* opaque, reference counted */

/* Runs on a worker thread. Returns 0 and optionally sets *result (the
 * future's result, owned by the application), or a negative libuv code
 * (UV_E*), which becomes the future's status (state UVPOOL_FAILED) and is
 * what uv_strerror() will describe. Returning UV_ECANCELED after
 * uvpool_cancel_requested() became nonzero leaves the future
 * UVPOOL_CANCELLED. A positive return value is taken as an errno and
 * negated (5 becomes UV_EIO), as libuv's codes are -errno on Unix.
 * Codes of other families must be mapped first: getaddrinfo()'s EAI_*
 * values are small negative numbers that collide with -errno (EAI_NONAME
 * is -2, which libuv reads as UV_ENOENT); return uvpool_gai_error(rc),
 * which gives libuv's UV_EAI_* code. */
typedef int (*uvpool_work_cb)(void *arg, void **result);

/* Runs on the loop thread, once per registration, after the future
 * settled. The future is borrowed for the duration of the call. */
typedef void (*uvpool_done_cb)(uvpool_future_t *f, void *data);

/* Runs on the loop thread, last, when uvpool_close() finished. */
typedef void (*uvpool_close_cb)(uvpool_t *pool, void *data);

typedef enum {
  UVPOOL_PENDING,  /* queued, not started */
  UVPOOL_RUNNING,  /* a worker runs it */
  UVPOOL_DONE,     /* work returned 0 */
  UVPOOL_FAILED,   /* work returned an error, or the pool broke */
  UVPOOL_CANCELLED /* never ran, or cooperatively cancelled */
} uvpool_state_t;

/* uvpool_close flag: cancel queued tasks instead of running them. */
#define UVPOOL_CANCEL_PENDING 1u
/* uvpool_close flag: ask running tasks to stop, as uvpool_future_cancel
 * does: uvpool_cancel_requested() becomes nonzero in every task that runs
 * now or starts before the close finished. A task that then returns
 * UV_ECANCELED settles UVPOOL_CANCELLED. */
#define UVPOOL_CANCEL_RUNNING 2u
/* uvpool_options_t.flags: at process exit, cancel queued tasks. */
#define UVPOOL_EXIT_CANCEL_PENDING 1u
/* uvpool_options_t.flags: at process exit, ask running tasks to stop (as
 * UVPOOL_CANCEL_RUNNING does for a close). */
#define UVPOOL_EXIT_CANCEL_RUNNING 2u

typedef struct {
  /* Most workers alive at once. 0: min(32, uv_available_parallelism() + 4). */
  unsigned max_workers;
  /* Workers kept alive while idle (once started). Default 0.
   * > max_workers is UV_EINVAL. */
  unsigned min_workers;
  /* A worker above min_workers idle this long exits. 0: 10000. */
  unsigned idle_timeout_ms;
  /* 0: unbounded. Else uvpool_submit returns UV_EAGAIN while this many
   * tasks wait to start. */
  size_t max_queued;
  /* Worker stack size in bytes. 0: the platform default. */
  size_t stack_size;
  /* Worker thread name prefix; workers are named "<prefix>-<n>", cut to
   * Linux's 15 characters. Copied by uvpool_new. NULL: "uvpool". */
  const char *name;
  /* Called first on each worker thread. Nonzero (a negative UV_E* code; a
   * positive errno is negated) breaks the pool: queued futures fail with that
   * code and later submits return it. */
  int (*thread_init)(void *thread_data);
  /* Called last on each worker thread that ran thread_init successfully. */
  void (*thread_exit)(void *thread_data);
  void *thread_data;
  /* Process exit waits this long for queued and running work.
   * < 0: forever (default). 0: not at all. Work not started by then is
   * cancelled; work still running is abandoned (see uvpool_new). */
  int64_t exit_timeout_ms;
  /* UVPOOL_EXIT_CANCEL_PENDING, UVPOOL_EXIT_CANCEL_RUNNING. */
  unsigned flags;
  /* A cap on every spin, in us. An idle worker spins for its next task,
   * and the loop thread, after callbacks that submitted work, for that
   * work's completions, only while recent waits were shorter than a
   * wake-up, for about twice the predicted wait, and never longer than
   * this (see the README: spinning pays for itself). At most one worker
   * of a pool (of its group) spins at a time; an idle pool does not spin. 0:
   * never spin. UVPOOL_SPIN_DEFAULT (the default): 50 us. */
  unsigned spin_us;
  /* NULL: this pool gets workers of its own. Else an open pool whose
   * workers, run queue, lanes and worker options this pool shares: the
   * two, and every pool that shares either, form one group, with one run
   * queue (priorities and FIFO across its pools), one max_workers, one
   * monitor and deadline thread, and one set of lanes (a lane of any
   * member is valid on every member). The worker options above
   * (max_workers, min_workers, idle_timeout_ms, stack_size, name,
   * thread_init, thread_exit, thread_data, spin_us) belong to the group
   * and must be left at their defaults here, else uvpool_new returns
   * UV_EINVAL; max_queued, exit_timeout_ms and flags stay the pool's own.
   * A pool's callbacks run on its own loop. uvpool_new returns
   * UV_ESHUTDOWN if share is closing. See the README: one pool per loop. */
  uvpool_t *share;
} uvpool_options_t;

#define UVPOOL_SPIN_DEFAULT ((unsigned)-1)

/* The task counts are the pool's own; the worker counts (and busy_ns,
 * spin_ns, spin_wasted_ns) are its group's (see uvpool_options_t.share). */
typedef struct {
  uint64_t submitted, completed, failed,
      cancelled;                                /* totals since uvpool_new */
  uint64_t queued, running;                     /* now */
  unsigned workers, idle_workers, peak_workers; /* now, now, highest ever */
  /* Totals since uvpool_new, in ns of wall time: workers busy (running
   * and publishing tasks, between idle periods); spent spinning, by idle
   * workers for their next task and by the loop thread for completions;
   * and the part of that spin that found nothing (see the README on the
   * bound it keeps). */
  uint64_t busy_ns, spin_ns, spin_wasted_ns;
} uvpool_stats_t;

/* Fills *opts with the defaults. Any thread. */
UVPOOL_EXTERN void uvpool_options_init(uvpool_options_t *opts);

/* Creates a pool bound to loop and stores it in *out, with one reference
 * that uvpool_close() releases once the close finished. No worker starts
 * until work arrives. On the thread that runs the loop, or, while no
 * thread runs it, on any thread (the pool then counts it as the loop
 * thread until it sees the loop run).
 * Returns 0; UV_EINVAL for a NULL loop or out, or min_workers >
 * max_workers, or a worker option set beside share; UV_ENOMEM;
 * UV_ESHUTDOWN once process exit began, or if share is closing.
 *
 * With opts->share, the pool joins that pool's group: its tasks run on
 * the group's workers, in the group's run queue, and its callbacks on this
 * pool's loop. Members may close in any order: a close drains (or
 * cancels) the closing pool's own tasks and waits for its own running
 * ones; the workers stay while another member is open, and the close of
 * the last member joins them.
 *
 * Process exit: an exit handler (atexit, registered at the first
 * uvpool_new) finds every pool not yet closed, stops it accepting work,
 * runs its queued tasks, dependent ones included (cancels them with
 * UVPOOL_EXIT_CANCEL_PENDING; asks running ones to stop with
 * UVPOOL_EXIT_CANCEL_RUNNING), waits up to exit_timeout_ms for them and for
 * running tasks, then joins the workers (each runs thread_exit), each
 * pool by its own options and each group's workers once. No done
 * callback runs once exit began; futures still settle, so
 * uvpool_future_wait() in other threads returns. exit() from inside work
 * or a done callback does not deadlock: the handler does not wait for the
 * task that called it. A process with no open pool pays nothing at exit.
 * A task that never returns holds exit for as long as exit_timeout_ms
 * allows, by default forever: after 3 s of waiting the handler writes one
 * line to stderr naming the pool, how many tasks still run, and that
 * exit_timeout_ms bounds the wait.
 *
 * fork(): in the child, pools inherited from the parent have no workers.
 * Their unsettled futures are settled UVPOOL_CANCELLED (status
 * UV_ECANCELED) in the child, they accept no work (UV_ESHUTDOWN), and the
 * exit handler ignores them. uvpool_close() on one is allowed once the
 * child's loop is usable (uv_loop_fork) and delivers the pending
 * callbacks; this holds also for a pool the parent was closing at fork(),
 * whose close (and close callback) stays the parent's. Pools created in
 * the child work normally. */
UVPOOL_EXTERN int uvpool_new(uv_loop_t *loop, const uvpool_options_t *opts,
                             uvpool_t **out);

/* Queues work(arg) and, if out is not NULL, stores a new future in *out
 * with one reference owned by the caller (release it with
 * uvpool_future_unref). With out == NULL the task is fire-and-forget.
 * Any thread. Tasks start in submission order.
 * Returns 0; UV_EINVAL for a NULL pool or work; UV_ESHUTDOWN once close or
 * process exit began; UV_EAGAIN when max_queued tasks already wait;
 * UV_ENOMEM; the thread_init code of a broken pool; the error of thread
 * creation when no worker exists and none can be started. On error
 * nothing is queued and *out is untouched. An accepted task runs, is
 * cancelled, or (only if every worker left and no new thread could be
 * started for it) settles FAILED with that thread-creation error.
 *
 * Loop liveness: the pool's handle keeps uv_run() alive while any future
 * is unsettled or has an undelivered callback. Only the loop thread may
 * reference a handle (uv_ref), so work submitted from another thread holds
 * the loop from the moment the loop thread sees it: the submit wakes the
 * loop, which references the handle in the same iteration. If the loop is
 * not running at all and nothing else is alive, uv_run() returns without
 * looking; any call of uvpool_submit or uvpool_stats on the loop thread
 * adopts the outstanding work, after which uv_run() delivers it. */
UVPOOL_EXTERN int uvpool_submit(uvpool_t *pool, uvpool_work_cb work, void *arg,
                                uvpool_future_t **out);

/* Queues work(arg) and registers cb(f, data) in one step: both happen or
 * neither, so no completion can be lost between them. The future is the
 * pool's: cb borrows it (f is valid during cb, and uvpool_future_ref
 * keeps it longer). cb runs on the loop thread once the task settled,
 * with its state, status, result and arg (uvpool_future_arg) readable.
 * Any thread. Allocates nothing in the steady state.
 * Returns as uvpool_submit; UV_EINVAL for a NULL pool, work or cb. */
UVPOOL_EXTERN int uvpool_submit_cb(uvpool_t *pool, uvpool_work_cb work,
                                   void *arg, uvpool_done_cb cb, void *data);

/* Queues work(args[i]) for every i < n in one step: all n are queued or
 * none. futs: NULL (fire-and-forget), or an array of n that receives one
 * future per task, in the order of args, each with one reference owned by
 * the caller. Tasks start in array order. One lock (or, on the loop
 * thread, one lock-free push) for the whole batch, and one wake-up: the
 * workers hand further wake-ups on as the batch needs them. Any thread.
 * Returns as uvpool_submit; UV_EINVAL for a NULL pool, work or args, or
 * n == 0; UV_EAGAIN if the n tasks do not fit under max_queued. On error
 * nothing is queued and futs is untouched. */
UVPOOL_EXTERN int uvpool_submit_many(uvpool_t *pool, uvpool_work_cb work,
                                     void *const *args, size_t n,
                                     uvpool_future_t **futs);

/* uv_queue_work on a pool. work_cb(req) runs on a worker;
 * after_work_cb(req, status), if not NULL, runs on the loop thread with
 * status 0, or UV_ECANCELED if the req was cancelled (uvpool_cancel_work,
 * or a close with UVPOOL_CANCEL_PENDING, or process exit with
 * UVPOOL_EXIT_CANCEL_PENDING), or the thread_init code of a broken pool.
 * Sets req->type (UV_WORK), req->loop (the pool's loop), req->work_cb and
 * req->after_work_cb; req->data stays the caller's; the req's private
 * fields are the pool's until then. The req must stay valid until
 * after_work_cb ran, or, with a NULL after_work_cb, until work_cb
 * returned (or, if the req never runs, until the pool's close finished).
 * A req may be queued again from its own work_cb (with a NULL
 * after_work_cb) or after_work_cb, as with libuv. uv_cancel() on it
 * returns UV_EBUSY: use uvpool_cancel_work(). Any thread, including a
 * worker. Allocates nothing in the steady state; the req's callback runs
 * like uvpool_submit_cb's.
 * Returns 0; UV_EINVAL for a NULL pool, req or work_cb; otherwise as
 * uvpool_submit. */
UVPOOL_EXTERN int uvpool_queue_work(uvpool_t *pool, uv_work_t *req,
                                    uv_work_cb work_cb,
                                    uv_after_work_cb after_work_cb);

/* Cancels a req queued with uvpool_queue_work that has not started, like
 * uv_cancel: its after_work_cb runs later with UV_ECANCELED. Any thread.
 * Returns 0; UV_EBUSY if it started or settled (its work may then see
 * uvpool_cancel_requested() become nonzero); UV_EINVAL for NULL. */
UVPOOL_EXTERN int uvpool_cancel_work(uv_work_t *req);

/* Begins closing the pool. Loop thread only (see the conventions at the
 * top). Never blocks.
 * At once: uvpool_submit returns UV_ESHUTDOWN. Queued tasks still run
 * (with UVPOOL_CANCEL_PENDING they are cancelled instead); running tasks
 * finish; every done callback is delivered; every worker is joined, once
 * it finished, without blocking the loop; the handle is closed; then
 * cb(pool, data) runs, last, from the loop (never inside uvpool_close;
 * cb may be NULL). In a group (uvpool_options_t.share) all of this
 * concerns the pool's own tasks; the workers are joined by the close of
 * the group's last open member, and outlive the others.
 * flags: UVPOOL_CANCEL_PENDING, UVPOOL_CANCEL_RUNNING.
 * When cb returns, the close gives back the creator's reference: the pool
 * is gone unless uvpool_ref() references remain. A pool kept by such a
 * reference answers every call safely: submits return UV_ESHUTDOWN,
 * uvpool_stats() works, and nothing touches the closed handle. Futures the
 * application still references stay valid until unreferenced;
 * uvpool_future_on_done on them then returns UV_ESHUTDOWN.
 * Returns 0; UV_EINVAL for a NULL pool, a second close, or a call made on
 * another thread while the loop runs there; UV_ESHUTDOWN once process exit
 * began. */
UVPOOL_EXTERN int uvpool_close(uvpool_t *pool, unsigned flags,
                               uvpool_close_cb cb, void *data);

/* Adds a reference to pool and returns it. Any thread, as long as the
 * caller already holds a reference (the creator's, until the close
 * finished, or one of its own). NULL is ignored. */
UVPOOL_EXTERN uvpool_t *uvpool_ref(uvpool_t *pool);

/* Releases a reference taken with uvpool_ref(); the last reference of a
 * closed pool frees it. Any thread. The creator's reference is not this
 * call's to release (uvpool_close releases it): releasing more references
 * than uvpool_ref() took aborts (see the conventions). NULL is ignored. */
UVPOOL_EXTERN void uvpool_unref(uvpool_t *pool);

/* Copies a consistent snapshot of the counters into *out. Any thread.
 * Returns 0 or UV_EINVAL for a NULL argument. */
UVPOOL_EXTERN int uvpool_stats(uvpool_t *pool, uvpool_stats_t *out);

/* The loop the pool was created on. Any thread. */
UVPOOL_EXTERN uv_loop_t *uvpool_loop(const uvpool_t *pool);

/* The pool that owns handle, or NULL if handle is not a pool's. A pool
 * has three handles on its loop: an async handle, and a prepare and a
 * check handle that tell it which thread runs the loop. The async handle
 * answers until the close finished; the other two until the close began
 * (they close at once, and a sweep skips closing handles). So a uv_walk()
 * sweep that calls uvpool_close(uvpool_from_handle(h), ...) for pool
 * handles and uv_close() for the others that are not closing yet closes
 * every pool once: the async handle, created first, is visited first.
 * Loop thread. */
UVPOOL_EXTERN uvpool_t *uvpool_from_handle(const uv_handle_t *handle);

/* Registers cb(f, data) to run once on the loop thread after f settles.
 * Callbacks of one future run in registration order. Never runs cb
 * synchronously: a callback added after settlement runs on a later loop
 * iteration. Any thread. The pool holds what it needs of f until cb ran.
 * A future's first callback allocates nothing; the second allocates two
 * small nodes, each later one one.
 * Returns 0; UV_EINVAL for NULL f or cb; UV_ENOMEM; UV_ESHUTDOWN once the
 * pool finished closing or process exit began (cb will not run). */
UVPOOL_EXTERN int uvpool_future_on_done(uvpool_future_t *f, uvpool_done_cb cb,
                                        void *data);

/* Cancels f if it has not started: it settles UVPOOL_CANCELLED with status
 * UV_ECANCELED and its callbacks still run. Any thread.
 * Returns 0; UV_EBUSY if f runs or settled (nothing changes, but running
 * work sees uvpool_cancel_requested() become nonzero); UV_EINVAL for NULL. */
UVPOOL_EXTERN int uvpool_future_cancel(uvpool_future_t *f);

/* The state now. Any thread. */
UVPOOL_EXTERN uvpool_state_t uvpool_future_state(const uvpool_future_t *f);

/* 0 if DONE, the work's code if FAILED, UV_ECANCELED if CANCELLED,
 * UV_EBUSY while unsettled, UV_EINVAL for NULL. Any thread. */
UVPOOL_EXTERN int uvpool_future_status(const uvpool_future_t *f);

/* The result the work stored, once DONE; NULL otherwise. Any thread. The
 * pointee belongs to the application. */
UVPOOL_EXTERN void *uvpool_future_result(const uvpool_future_t *f);

/* The arg the task was submitted with (uvpool_submit, _ex, _cb, _many: its
 * args[i]; uvpool_queue_work: the req); NULL for a combination (when_all,
 * when_any) or NULL f. Any thread, for as long as f is referenced or
 * borrowed. */
UVPOOL_EXTERN void *uvpool_future_arg(const uvpool_future_t *f);

/* Blocks until f settles or timeout_ms passes (< 0: forever). Settlement
 * does not wait for callbacks (for a combination either: see "composing
 * work"), so waiting on the loop thread is safe.
 * Any thread. Returns 0 once settled (also after close); UV_ETIMEDOUT;
 * UV_EINVAL for NULL. Waiting in a work function on a task queued behind
 * it can deadlock a pool with too few workers: that is the caller's
 * responsibility. */
UVPOOL_EXTERN int uvpool_future_wait(uvpool_future_t *f, int64_t timeout_ms);

/* Adds a reference and returns f. Any thread. */
UVPOOL_EXTERN uvpool_future_t *uvpool_future_ref(uvpool_future_t *f);

/* Drops a reference; the last one frees f. NULL is ignored. Any thread.
 * Dropping a reference never cancels the task. Dropping more references
 * than were taken aborts, as long as f's memory was not reused meanwhile
 * (see the conventions). */
UVPOOL_EXTERN void uvpool_future_unref(uvpool_future_t *f);

/* Inside work: nonzero once uvpool_future_cancel() was called on the task
 * this thread runs, or a close (UVPOOL_CANCEL_RUNNING) or process exit
 * (UVPOOL_EXIT_CANCEL_RUNNING) asked running tasks to stop. 0 elsewhere. */
UVPOOL_EXTERN int uvpool_cancel_requested(void);

/* libuv's code (UV_EAI_*) for a getaddrinfo() or getnameinfo() return
 * value (EAI_*), to return from work: 0 stays 0; EAI_SYSTEM becomes the
 * negated errno; an unknown value becomes UV_EAI_FAIL. Any thread. */
UVPOOL_EXTERN int uvpool_gai_error(int eai);

/* ---- composing work ----------------------------------------------------
 * Combinators take their own references on their inputs, never block, and
 * deliver callbacks on the loop thread like any future. Their inputs must
 * belong to pools of one loop. A combination settles, and a dependent task
 * is released to the run queue, the moment the input that decides it
 * settles, on the thread that settled it (a worker, usually): neither needs
 * the loop to run, so uvpool_future_wait() on a combination works on the
 * loop thread, and at process exit dependent work runs (or is cancelled,
 * with UVPOOL_EXIT_CANCEL_PENDING) like any queued work. Only the
 * callbacks wait for the loop. Cancelling a combination cancels nothing
 * else. */

/* uvpool_when_all flag: settle at the first FAILED or CANCELLED input. */
#define UVPOOL_FAIL_FAST 1u

/* Stores in *out a future that settles once every input settled: DONE
 * (status 0) if all are DONE, else with the state and status of the first
 * input, in array order, whose status is non-zero. With UVPOOL_FAIL_FAST it
 * settles at the first FAILED or CANCELLED input, with its state and
 * status. The future belongs to fs[0]'s pool. Any thread.
 * Returns 0; UV_EINVAL for NULL fs, out or entries, n == 0, or inputs of
 * different loops; UV_ENOMEM; UV_ESHUTDOWN if fs[0]'s pool finished
 * closing or process exit began. On error *out is untouched. */
UVPOOL_EXTERN int uvpool_when_all(uvpool_future_t *const *fs, size_t n,
                                  unsigned flags, uvpool_future_t **out);

/* Stores in *out a future that settles DONE when the first input settles;
 * its result is that input future (borrowed: valid while *out is
 * referenced; inspect its own state and status). Any thread. Returns as
 * uvpool_when_all. */
UVPOOL_EXTERN int uvpool_when_any(uvpool_future_t *const *fs, size_t n,
                                  uvpool_future_t **out);

/* Submits work to run once every dependency is DONE. If a dependency
 * FAILED or was CANCELLED, the task settles with that state and status and
 * work never runs. The task counts as queued for nothing until then (it is
 * not in the run queue), and uvpool_future_cancel() cancels it meanwhile.
 * ndeps == 0 is a plain uvpool_submit. Any thread.
 * Returns 0; UV_EINVAL for NULL pool, work or dependencies, or
 * dependencies of another loop; UV_ESHUTDOWN once close or exit began;
 * UV_ENOMEM; a broken pool's code. */
UVPOOL_EXTERN int uvpool_submit_after(uvpool_t *pool,
                                      uvpool_future_t *const *deps,
                                      size_t ndeps, uvpool_work_cb work,
                                      void *arg, uvpool_future_t **out);

typedef struct {
  /* Higher starts first; FIFO within a priority. No starvation: a queued
   * task is overtaken by later, higher-priority tasks at most 32 times,
   * after which nothing passes it. Default 0. */
  int priority;
  /* < 0: none (default). Else a task still queued this many ms after
   * submission settles CANCELLED with status UV_ETIMEDOUT, and its
   * callbacks run then, not when a worker frees up. A task that started is
   * not affected. */
  int64_t deadline_ms;
  /* 0: the default lane, uncapped. Else a lane from uvpool_lane_new(). */
  unsigned lane;
} uvpool_task_options_t;

/* Fills *o with the defaults (priority 0, no deadline, lane 0). */
UVPOOL_EXTERN void uvpool_task_options_init(uvpool_task_options_t *o);

/* uvpool_submit with per-task options (NULL: defaults). Any thread.
 * Returns as uvpool_submit; also UV_EINVAL for an unknown lane, and the
 * error of starting the group's deadline thread (started at the first
 * deadline, it never runs work). */
UVPOOL_EXTERN int uvpool_submit_ex(uvpool_t *pool,
                                   const uvpool_task_options_t *o,
                                   uvpool_work_cb work, void *arg,
                                   uvpool_future_t **out);

/* Creates a lane: at most max_running of its tasks run at once; its other
 * tasks wait without blocking workers, which keep serving other lanes.
 * Stores its number (>= 1) in *lane_out. Any thread. The lane is the
 * pool's group's: valid in uvpool_submit_ex on every member, its cap
 * counting the tasks of them all.
 * Returns 0; UV_EINVAL for NULL pool or lane_out or max_running == 0;
 * UV_ESHUTDOWN once the pool's close or process exit began; UV_ENOMEM. */
UVPOOL_EXTERN int uvpool_lane_new(uvpool_t *pool, unsigned max_running,
                                  unsigned *lane_out);

/* "MAJOR.MINOR.PATCH". Any thread. */
UVPOOL_EXTERN const char *uvpool_version_string(void);

#ifdef __cplusplus
}
#endif
#endif /* UVPOOL_H */
