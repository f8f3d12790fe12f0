/* Internal declarations shared by the files of src/. Not installed. */
#ifndef UVPOOL_INTERNAL_H
#define UVPOOL_INTERNAL_H

#include "list.h"
#include "uvpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UVPOOL__HIDDEN __attribute__((visibility("hidden")))

/* ---- future state word -------------------------------------------------
 * One 32-bit atomic per future holds the uvpool_state_t and flag bits, so
 * that waiting is a futex on it and readers need no lock. */
#define UVPOOL__STATE_MASK 0x7u
#define UVPOOL__F_WAITERS 0x08u        /* a thread sleeps in futex_wait */
#define UVPOOL__F_CANCEL_REQ 0x10u     /* cancel asked while running */
#define UVPOOL__F_ON_DONE_LIST 0x20u   /* linked on pool->done, holds a ref */
#define UVPOOL__F_LOCK 0x40u           /* guards the callback fields */
#define UVPOOL__F_HAS_CB 0x80u         /* the inline callback slot is taken */
#define UVPOOL__F_EXT 0x100u           /* arg points to a uvpool__ext_t */
#define UVPOOL__F_HELD 0x200u          /* waits for dependencies, not queued */
#define UVPOOL__F_COMBINED 0x400u      /* settled by a combinator, no work */
#define UVPOOL__F_RESULT_FUTURE 0x800u /* result is a referenced future */
#define UVPOOL__F_PARKED 0x1000u       /* on its lane's parked list */
#define UVPOOL__F_CB_LIST 0x2000u      /* callbacks in a node list (cb_data) */
#define UVPOOL__F_WATCHED 0x4000u      /* the list holds watchers (future.c) */
/* Bits 16-23 count how often a queued task was overtaken by a higher
 * priority one; at UVPOOL__MAX_OVERTAKE it can no longer be passed. */
#define UVPOOL__OVERTAKE_ONE (1u << 16)
#define UVPOOL__OVERTAKE_MASK (0xffu << 16)
#define UVPOOL__MAX_OVERTAKE 32u

typedef struct uvpool__cbnode_s {
  struct uvpool__cbnode_s *next;
  uvpool_done_cb cb;
  void *data;
  uvpool_future_t *watched; /* a watcher's future; NULL: a done callback */
} uvpool__cbnode_t;

/* 64 bytes: one cache line. Unions hold fields whose lifetimes do not
 * overlap: work/arg until the task starts, result/status once it settled.
 * One callback sits in cb/cb_data; with more (F_CB_LIST), cb_data points
 * to the tail of a circular node list holding them all. */
struct uvpool_future_s {
  uvpool_future_t *next; /* pending queue, done list or free list */
  union {
    uvpool_future_t *prev; /* pending queue only (O(1) cancel) */
    int status;            /* once settled: no list uses prev any more */
  };
  union {
    uvpool_work_cb work;
    void *result;
  } u;
  void *arg;         /* the task's argument; while F_EXT, its uvpool__ext_t */
  uvpool_done_cb cb; /* the only callback, inline: no allocation */
  void *cb_data;     /* its data, or the node list's tail */
  uvpool_t *pool;    /* set once, when its slab is made */
  _Atomic uint32_t refs;
  _Atomic uint32_t state;
};

/* Per-task options of uvpool_submit_ex, kept out of the future so that
 * plain tasks stay one cache line. Owned by the queue until the task
 * leaves it. */
typedef struct uvpool__ext_s {
  void *arg;
  int priority;
  unsigned lane;
  uint64_t deadline;      /* uv_hrtime() ns, 0: none */
  uvpool__link_t dl_link; /* on the group's deadlines, if it has one */
  uvpool_future_t *f;
} uvpool__ext_t;

/* A list of futures through their own next and prev (queue.c): the run
 * queue, a lane's parked tasks, a pool's held tasks. NULL-ended, the
 * head's prev not kept (see list.h on why not uvpool__link_t). */
typedef struct {
  uvpool_future_t *head, *tail;
} uvpool__futures_t;

typedef struct {
  unsigned max_running;     /* 0: uncapped */
  unsigned admitted;        /* in the run queue or running */
  uvpool__futures_t parked; /* waiting for a slot, in queue order */
} uvpool__lane_t;

/* Futures live in slabs of UVPOOL__SLAB_SIZE bytes, every slot a future;
 * the list of slabs is kept in small headers of their own. */
#define UVPOOL__SLAB_SIZE ((size_t)64 * 1024)
#define UVPOOL__SLAB_SLOTS (UVPOOL__SLAB_SIZE / 64)
typedef struct uvpool__slab_s {
  struct uvpool__slab_s *next;
  uvpool_future_t *slots;
} uvpool__slab_t;

/* Settled fire-and-forget futures a worker gathers before it pushes them
 * on the done list in one step (worker.c). */
#define UVPOOL__QUIET_MAX 64u

typedef struct uvpool__group_s uvpool__group_t;

typedef struct uvpool__worker_s {
  uvpool__link_t link; /* on the supply's workers, then its zombies */
  uvpool__group_t *g;
  uvpool_future_t *current; /* task it runs, or NULL; under g->mu */
  uint64_t started;         /* tasks it took; under g->mu */
  uint64_t mon_seen;        /* started at the monitor's last tick */
  unsigned mon_stuck;       /* ticks it was seen stuck on one task */
  bool mon_help;            /* the monitor's tick counts it as stuck */
  int ktid;                 /* kernel thread id, set before it takes mu */
  uv_thread_t tid;
  unsigned id;
  bool idle_exit;      /* leaves for idleness; counted in supply.nleaving */
  bool spun;           /* spun (or chose not to) since its last task */
  bool parked;         /* in the supply's work_cv wait */
  bool retire_woken;   /* the monitor woke it to retire */
  bool awake;          /* counted in supply.nawake */
  uint64_t idle_since; /* when it last ran out of tasks */
  uint64_t busy_since; /* when it last left idleness */
  /* Odd while it holds an outcome not yet published (worker.c): set
   * under mu, cleared without it once the last touch of the outcome's
   * pool is done. pub_wait: the odd value a closing pool waits to see
   * change, under mu (uvpool__supply_quiesce). */
  _Atomic uint32_t pubseq;
  uint32_t pub_wait;
  /* Settled futures nothing can observe, not yet on the done list of
   * quiet_pool, the pool they all belong to (see worker.c); touched by
   * the worker only while publishing, and by a fork child's disown. */
  uvpool_future_t *quiet, *quiet_last;
  uvpool_t *quiet_pool;
  unsigned nquiet;
} uvpool__worker_t;

/* Which thread runs the loop, and the lock on the runner's private state
 * (owner.c). */
typedef struct {
  uv_prepare_t prepare;     /* records the runner before each poll */
  uv_check_t check;         /* and that the poll is over */
  _Atomic uintptr_t runner; /* the thread last seen running the loop */
  _Atomic uintptr_t holder; /* the thread holding the owner lock, or 0 */
  unsigned depth;           /* the holder's nested steps */
  _Atomic bool polling;     /* the runner is between prepare and check */
} uvpool__owner_t;

/* The pool is laid out in cache-line groups by who writes what, so that
 * the loop thread's lock-free submit touches no line that workers write
 * per task. UVPOOL__LINE starts a new group. */
#define UVPOOL__LINE _Alignas(64)

/* A spin predictor (supply.c): recent waits and recent wake-up costs,
 * whence whether to spin for the next wait, and how long. */
typedef struct {
  uint64_t wait_ns; /* moving average of recent waits */
  uint64_t wake_ns; /* moving average of wake-up latencies */
} uvpool__spinpred_t;

/* What spinning cost and what it bought, for the waste bound (supply.c)
 * and uvpool_stats. Relaxed atomics: workers add under mu, the loop thread
 * without. */
typedef struct {
  _Atomic uint64_t busy_ns;   /* workers busy, this window */
  _Atomic uint64_t saved_ns;  /* wake-ups that spins which hit replaced */
  _Atomic uint64_t waste_ns;  /* spins that found nothing, this window */
  _Atomic uint64_t window_at; /* start of this window */
  _Atomic uint64_t busy_total, spin_total, waste_total;
} uvpool__spinbudget_t;

/* Worker supply (supply.c): the workers, their counts, and the rules that
 * start, wake, spin, park and retire them. Changed only through supply.c. */
typedef struct {
  /* Read without mu by the lock-free submit's kick; written under mu,
   * rarely (start, park, spin, leave), never per task. */
  _Atomic unsigned nworkers, nparked, nspinning;
  /* Idle, not parked, not starting: each looks at the queue before it
   * parks or takes its next task. */
  _Atomic unsigned nawake;
  _Atomic bool wake_pending; /* a parked worker was signalled */
  /* Under mu, on their own cache line: workers write these per task. */
  UVPOOL__LINE uv_cond_t work_cv; /* parked workers wait here */
  uvpool__link_t workers;         /* alive */
  uvpool__link_t zombies;         /* left, not yet joined */
  unsigned nstarting;             /* started, not yet past thread_init */
  unsigned nidle, nrunning, npeak, next_id;
  unsigned nleaving;          /* idle workers that decided to leave */
  uvpool__spinpred_t idle;    /* idle workers' waits for the next task */
  uint64_t task_ns;           /* moving average of a task's run time */
  uint64_t kick_at;           /* when a parked worker was last signalled */
  _Atomic uint64_t wake_hint; /* idle.wake_ns, for the loop thread */
  uvpool__spinbudget_t spent; /* workers' and the loop thread's spinning */
} uvpool__supply_t;

/* The run queue and the lanes (queue.c), under mu; spinners read nqueued
 * without it. The inbox, queue.c's too, sits on a cache line of its own
 * in the group. */
typedef struct {
  uvpool__futures_t pend; /* runnable tasks, by priority then age */
  uvpool__lane_t *lanes;  /* lanes[0] is the default, uncapped */
  unsigned nlanes;
  size_t nlane_parked;    /* tasks on the lanes' parked lists */
  uint64_t npopped;       /* tasks taken from the run queue, for the monitor */
  _Atomic size_t nqueued; /* the run queue's length */
} uvpool__runq_t;

/* The loop thread's waits for the completions of work its callbacks
 * submitted (deliver.c), the runner's own: their predictor, and when the
 * last wait that did not spin began (0: none pending). */
typedef struct {
  uvpool__spinpred_t pred;
  uint64_t since;
  /* A lock-free submit since the last wait found no spinning worker: its
   * completion is a wake-up away, so the wait only probes (probe counts
   * the chances to skip before the next probe, probe_misses the probes
   * that missed in a row). Set by submit.c. */
  bool kicked;
  unsigned probe, probe_misses;
} uvpool__loopwait_t;

/* A service thread of a group (service.c): the monitor, the deadline
 * thread. */
typedef struct {
  uv_cond_t cv; /* it waits here */
  uv_thread_t tid;
  bool stop;            /* under mu: stopped for good */
  _Atomic bool running; /* the thread exists; read by submit */
} uvpool__service_t;

/* The monitor thread (monitor.c). */
typedef struct {
  uvpool__service_t svc;
  _Atomic bool sleeping; /* it waits for a backlog; read by the kick */
} uvpool__monitor_t;

/* Deadlines (deadline.c): queued tasks with one, soonest first, and the
 * thread that expires them. Under mu. */
typedef struct {
  uvpool__service_t svc;
  uvpool__link_t list; /* of uvpool__ext_t, through dl_link */
} uvpool__deadlines_t;

#define UVPOOL__MAGIC 0x75767031u       /* "uvp1": the pool's memory is live */
#define UVPOOL__MAGIC_FREED 0xdeadbeefu /* written just before it is freed */

/* A group (group.c): the workers, the run queue, the lanes and the service
 * threads that one or more pools share (uvpool_options_t.share). Its
 * memory is kept by its member pools: the last one released frees it, by
 * then with every thread joined. */
struct uvpool__group_s {
  /* Read-mostly: the worker options, set up by the first pool. */
  uvpool_options_t opts;
  char name[16];
  const void *root; /* the first pool, as test hooks name the group */

  /* Plain tasks submitted without mu by the pools' loop threads: a
   * multi-producer stack with a closed bit, moved to pend by holders of
   * mu (see queue.c). */
  UVPOOL__LINE _Atomic uintptr_t inbox;

  /* The worker supply: its first members are what the lock-free submit
   * reads, written rarely. */
  UVPOOL__LINE uvpool__supply_t supply;
  uvpool__monitor_t monitor;

  /* mu guards everything below, and every member pool's fields that say
   * "under mu". */
  UVPOOL__LINE uv_mutex_t mu;
  uv_cond_t drain_cv; /* the exit handler waits here for workers to leave */
  uvpool__runq_t q;
  uvpool__deadlines_t dl;
  unsigned nthreads;    /* created and not yet joined: workers, monitor, ... */
  int broken;           /* thread_init's code, once one failed */
  bool forked;          /* inherited by a fork() child */
  bool exiting;         /* process exit began for a member */
  bool exit_listed;     /* on the exit handler's list */
  bool fork_locked;     /* fork_prepare holds mu */
  bool stopped;         /* its threads are stopped for good: no more */
  unsigned nopen;       /* members that take work: neither closing nor
                           exiting; at 0 idle workers leave */
  unsigned npools;      /* members not yet released */
  unsigned nundecided;  /* members whose close has not decided to
                           finish: the last one stops the threads */
  uvpool__link_t pools; /* members, through their g_link */
  uvpool__group_t *exit_next; /* the exit handler's list */
};

struct uvpool_s {
  /* Read-mostly: set up by uvpool_new, immutable after. */
  uint32_t magic;
  uv_loop_t *loop;
  uvpool__group_t *g;
  uvpool_options_t opts; /* max_queued, exit_timeout_ms, flags are its own */
  char name[16];

  /* The runner's own, under the owner lock (owner.c): its lock-free
   * submits and its free list. */
  UVPOOL__LINE uvpool__owner_t owner;
  uvpool_future_t *free_loop; /* still counted in live */
  /* Its share of outstanding, added without mu; the sum with outstanding
   * is exact on the loop thread, and async_cb folds it back under mu. */
  uint64_t loop_outstanding;
  /* Its share of submitted: one writer, relaxed, so that uvpool_stats may
   * read it from any thread. Every push on the group's inbox is counted
   * here before it is made. */
  _Atomic uint64_t loop_submitted;
  /* The async handle is referenced; written by the runner, under the
   * owner lock, read by other threads as a hint. */
  _Atomic bool refd;
  uvpool__loopwait_t wait; /* deliver.c's */

  _Atomic uint32_t life; /* UVPOOL__LIFE_*: see the predicates below */

  /* Settled futures for the loop: a multi-producer stack (see queue.c). */
  UVPOOL__LINE _Atomic(uvpool_future_t *) done;
  /* The loop thread spins on done: pushers need not wake it. */
  _Atomic bool loop_watching;
  _Atomic uint64_t sent_at; /* when a push last woke the loop thread */

  /* Freed off the loop thread: a multi-producer stack that the allocator
   * empties in one exchange. */
  UVPOOL__LINE _Atomic(uvpool_future_t *) free_stack;
  /* What keeps the pool's memory: one while open, one per future not
   * free, one per reference of uvpool_ref. */
  _Atomic unsigned long live;
  _Atomic unsigned long user_refs; /* taken by uvpool_ref, not yet released */

  /* completions and wake-ups; data points to the pool. Workers write its
   * pending flag. */
  UVPOOL__LINE uv_async_t async;

  /* Under the group's mu, from here down to the registry links. */
  UVPOOL__LINE size_t nqueued; /* its tasks in the run queue or parked */
  unsigned nrunning;           /* its tasks on workers */
  uint64_t inbox_taken;   /* its lock-free submits moved to the run queue */
  uvpool__futures_t held; /* tasks waiting for their dependencies (combine.c) */
  size_t nheld;
  uint64_t submitted, completed, failed, cancelled;
  uint64_t outstanding; /* settlements and callbacks not yet delivered */
  bool cancel_running;  /* a close or exit asked its running tasks to stop */
  bool exit_timed_out;  /* the exit handler's: its exit_timeout_ms passed */
  unsigned close_flags;
  unsigned handles_open; /* closing: handles whose close callback is due */
  uvpool_close_cb close_cb;
  void *close_data;
  uvpool_future_t *free_local; /* free futures */
  uvpool__slab_t *slabs;
  uvpool__link_t g_link; /* on its group's list of members */

  /* On the exit registry, under the registry lock; exit_next belongs to
   * the exit handler. */
  uvpool__link_t reg_link;
  uvpool_t *exit_next;
};

/* Misuse that would corrupt state (a double release): reports fn and what
 * on stderr, like libuv's own assertions, and aborts. alloc.c. */
UVPOOL__HIDDEN _Noreturn void uvpool__misuse(const char *fn, const char *what);
/* Aborts through uvpool__misuse if pool's memory was released. */
UVPOOL__HIDDEN void uvpool__check_alive(const uvpool_t *pool, const char *fn);

/* alloc.c: every allocation goes through here (failure injection). */
UVPOOL__HIDDEN void *uvpool__malloc(size_t n);
UVPOOL__HIDDEN void *uvpool__aligned_alloc(size_t align, size_t n);
UVPOOL__HIDDEN void uvpool__free(void *p);
/* Test hook: make the n-th allocation from now (1-based) and every later
 * one fail when sticky, or only that one. 0 disables. */
UVPOOL__HIDDEN void uvpool__alloc_fail_at(unsigned long n, bool sticky);
UVPOOL__HIDDEN unsigned long uvpool__alloc_count(void);
/* Test hook: make the n-th thread creation from now fail with err. */
UVPOOL__HIDDEN void uvpool__thread_fail_at(unsigned long n, int err);
UVPOOL__HIDDEN int uvpool__thread_create(uv_thread_t *tid, size_t stack,
                                         void (*fn)(void *), void *arg);

/* Test hooks (fault-injection builds; a release build calls nothing): a
 * test may hold a thread at these points, to order events that timing
 * alone would order only sometimes. pool is for comparison only: at
 * WORKER_START the thread has not yet looked at it. */
typedef enum {
  UVPOOL__HOOK_WORKER_START,   /* a new worker thread, first thing */
  UVPOOL__HOOK_THREAD_CREATED, /* a pool thread was created, under mu */
  UVPOOL__HOOK_CLOSE_DECIDED,  /* loop thread: the close will finish */
  UVPOOL__HOOK_MONITOR_TICK,   /* the monitor ended a tick, under mu */
  UVPOOL__HOOK_WORKER_IDLE,    /* a worker found no task: it will spin or
                                  park next; mu dropped for the hook */
  UVPOOL__HOOK_POOL_JOINED,    /* uvpool_new: the pool joined its group,
                                  its handle is not set up yet; no lock */
} uvpool__hook_point_t;
typedef void (*uvpool__hook_fn)(uvpool__hook_point_t point, const void *pool);
UVPOOL__HIDDEN void uvpool__hook_set(uvpool__hook_fn fn);
#ifdef UVPOOL_FAULT_INJECTION
UVPOOL__HIDDEN void uvpool__hook(uvpool__hook_point_t point, const void *pool);
/* Called with mu held: drops it around the hook, if one is installed, so
 * that the hook may wait for the loop thread. */
UVPOOL__HIDDEN void uvpool__hook_unlocked(uvpool__hook_point_t point,
                                          uv_mutex_t *mu, const void *pool);
#else
static inline void uvpool__hook(uvpool__hook_point_t point, const void *pool) {
  (void)point;
  (void)pool;
}
static inline void uvpool__hook_unlocked(uvpool__hook_point_t point,
                                         uv_mutex_t *mu, const void *pool) {
  (void)point;
  (void)mu;
  (void)pool;
}
#endif

/* futex.c */
UVPOOL__HIDDEN int uvpool__futex_wait(_Atomic uint32_t *addr, uint32_t val,
                                      int64_t timeout_ns);
UVPOOL__HIDDEN void uvpool__futex_wake_all(_Atomic uint32_t *addr);

/* future.c */
UVPOOL__HIDDEN uvpool_future_t *uvpool__future_alloc(uvpool_t *pool);
UVPOOL__HIDDEN void uvpool__future_unalloc(uvpool_t *pool, uvpool_future_t *f);
UVPOOL__HIDDEN void uvpool__settle(uvpool_t *pool, uvpool_future_t *f,
                                   uvpool_state_t st, int status, void *result);
/* uvpool__settle for the worker that ran f, without mu. Returns true,
 * with f not yet on the done list, when nothing can observe f (the pool
 * holds its only reference and no callback is registered): the caller
 * then pushes it later, in a batch (uvpool__done_push_chain). */
UVPOOL__HIDDEN bool uvpool__settle_ran(uvpool_t *pool, uvpool_future_t *f,
                                       uvpool_state_t st, int status,
                                       void *result);
UVPOOL__HIDDEN void uvpool__count_settled_locked(uvpool_t *pool,
                                                 uvpool_state_t st);
UVPOOL__HIDDEN void uvpool__settle_task_locked(uvpool_t *pool,
                                               uvpool_future_t *f,
                                               uvpool_state_t st, int status,
                                               void *result);
UVPOOL__HIDDEN void uvpool__future_deliver(uvpool_t *pool, uvpool_future_t *f);
/* Registers a watcher: fn(f, data) runs once when f settles, on the
 * settling thread, with no uvpool lock held. Returns 0; 1 if f settled
 * already (nothing is registered: the caller runs fn); UV_ENOMEM. */
UVPOOL__HIDDEN int uvpool__future_watch(uvpool_future_t *f, uvpool_done_cb fn,
                                        void *data);
/* Runs the watchers that settlements on this thread left waiting for the
 * locks to be released. Every thread calls it once it holds no uvpool
 * lock after a step that may have settled a future. */
UVPOOL__HIDDEN void uvpool__watchers_run(void);
UVPOOL__HIDDEN void uvpool__slabs_free(uvpool_t *pool);
UVPOOL__HIDDEN void uvpool__free_loop_release(uvpool_t *pool);
UVPOOL__HIDDEN bool uvpool__free_loop_refill_locked(uvpool_t *pool,
                                                    size_t want);

/* queue.c: the inbox, the run queue and lanes, under g->mu. */
UVPOOL__HIDDEN uvpool__ext_t *uvpool__ext_of(const uvpool_future_t *f);
UVPOOL__HIDDEN void uvpool__pend_push(uvpool__group_t *g, uvpool_future_t *f);
UVPOOL__HIDDEN uvpool_future_t *uvpool__pend_pop(uvpool__group_t *g);
UVPOOL__HIDDEN void uvpool__pend_cancel(uvpool__group_t *g, uvpool_future_t *f,
                                        int status);
UVPOOL__HIDDEN void uvpool__pend_cancel_all(uvpool__group_t *g, int status);
/* Adds a lane of max_running; UV_ENOMEM. */
UVPOOL__HIDDEN int uvpool__lane_add_locked(uvpool__group_t *g,
                                           unsigned max_running,
                                           unsigned *lane_out);
/* The lanes' memory goes with the group. */
UVPOOL__HIDDEN void uvpool__runq_destroy(uvpool__group_t *g);
/* Cancels the queued tasks of one member only (its close or exit). */
UVPOOL__HIDDEN void uvpool__pend_cancel_pool(uvpool__group_t *g, uvpool_t *pool,
                                             int status);
UVPOOL__HIDDEN void uvpool__lane_done(uvpool__group_t *g, unsigned lane);
/* The held list: tasks of uvpool_submit_after waiting for dependencies. */
UVPOOL__HIDDEN void uvpool__held_add_locked(uvpool_t *pool, uvpool_future_t *f);
UVPOOL__HIDDEN void uvpool__held_remove_locked(uvpool_t *pool,
                                               uvpool_future_t *f);
/* Settles every held task: CANCELLED for UV_ECANCELED, else FAILED. */
UVPOOL__HIDDEN void uvpool__held_cancel_all(uvpool_t *pool, int status);
/* Under mu: whether queued work is being cancelled (a close with
 * UVPOOL_CANCEL_PENDING, or an exit with UVPOOL_EXIT_CANCEL_PENDING). */
UVPOOL__HIDDEN bool uvpool__cancelling_queued_locked(const uvpool_t *pool);
/* Under mu: moves the inbox's tasks to the run queue, in submission
 * order. The counts below leave the inbox alone: callers that need them
 * complete drain first. */
UVPOOL__HIDDEN void uvpool__inbox_drain_locked(uvpool__group_t *g);
/* Under mu: the pool's tasks in the run queue or parked in lanes. */
UVPOOL__HIDDEN size_t uvpool__queued(const uvpool_t *pool);
/* Under mu: tasks in the run queue (not those parked in lanes). */
UVPOOL__HIDDEN size_t uvpool__runnable(const uvpool__group_t *g);
/* Under mu, leaving the inbox where it is: the run queue plus the
 * lock-free submits not yet moved; a push in flight may count early. */
UVPOOL__HIDDEN size_t uvpool__runnable_estimate(const uvpool__group_t *g);
/* The inbox: any thread may push; false once closed. */
UVPOOL__HIDDEN bool uvpool__inbox_push(uvpool__group_t *g, uvpool_future_t *f);
/* Pushes a chain linked newest to oldest through next, in one step: the
 * tasks run oldest first. */
UVPOOL__HIDDEN bool uvpool__inbox_push_chain(uvpool__group_t *g,
                                             uvpool_future_t *newest,
                                             uvpool_future_t *oldest);
UVPOOL__HIDDEN void uvpool__inbox_close(uvpool__group_t *g);
UVPOOL__HIDDEN bool uvpool__inbox_empty(const uvpool__group_t *g);

/* deadline.c: a per-group thread that expires queued tasks. */
UVPOOL__HIDDEN int uvpool__deadline_start_locked(uvpool__group_t *g);
UVPOOL__HIDDEN void uvpool__deadline_add_locked(uvpool__group_t *g,
                                                uvpool__ext_t *e);
UVPOOL__HIDDEN void uvpool__deadline_remove_locked(uvpool__group_t *g,
                                                   uvpool__ext_t *e);
UVPOOL__HIDDEN void uvpool__deadline_stop(uvpool__group_t *g);
UVPOOL__HIDDEN int uvpool__deadline_init(uvpool__group_t *g);
UVPOOL__HIDDEN void uvpool__deadline_destroy(uvpool__group_t *g);
UVPOOL__HIDDEN void uvpool__deadline_fork_child(uvpool__group_t *g);

/* pool.c */
UVPOOL__HIDDEN int uvpool__enqueue_locked(uvpool_t *pool, uvpool_future_t *f);
/* submit.c: uvpool_submit_cb that stores the future in *borrowed without
 * a reference: valid only while the caller keeps the task from settling
 * (work.c). */
UVPOOL__HIDDEN int uvpool__submit_borrowed(uvpool_t *pool, uvpool_work_cb work,
                                           void *arg, uvpool_done_cb cb,
                                           void *data,
                                           uvpool_future_t **borrowed);
UVPOOL__HIDDEN void uvpool__future_init(uvpool_future_t *f, uint32_t state,
                                        unsigned refs);

/* monitor.c: a per-group thread that watches the queue for stuck workers. */
UVPOOL__HIDDEN int uvpool__monitor_init(uvpool__group_t *g);
UVPOOL__HIDDEN void uvpool__monitor_destroy(uvpool__group_t *g);
UVPOOL__HIDDEN int uvpool__monitor_start_locked(uvpool__group_t *g);
UVPOOL__HIDDEN void uvpool__monitor_wake_locked(uvpool__group_t *g);
UVPOOL__HIDDEN void uvpool__monitor_stop(uvpool__group_t *g);
UVPOOL__HIDDEN void uvpool__monitor_fork_child(uvpool__group_t *g);
UVPOOL__HIDDEN bool uvpool__monitor_running(const uvpool__group_t *g);
UVPOOL__HIDDEN bool uvpool__monitor_sleeping(const uvpool__group_t *g);
/* Ticks a running worker may be stuck on one task, while the process
 * saturates its CPUs, before the monitor helps it anyway (supply.c). */
#define UVPOOL__RUNNING_GRACE_TICKS 20u
/* Test hook (fault-injection builds): replaces the monitor's look at the
 * process's CPU use with hook's answer to "are the CPUs saturated?",
 * asked once per tick. NULL restores it. */
UVPOOL__HIDDEN void uvpool__monitor_saturated_hook(bool (*hook)(void));
/* Test hook (fault-injection builds): answers "is thread tid asleep?"
 * (non-zero: yes) instead of /proc, whose answer a valgrind run, which
 * runs one thread at a time, makes "asleep" for every waiting thread. */
UVPOOL__HIDDEN void uvpool__monitor_asleep_hook(int (*hook)(int tid));

/* supply.c: the workers, their counts, and the rules over them (all
 * under mu unless said). */
UVPOOL__HIDDEN int uvpool__supply_init(uvpool__group_t *g);
UVPOOL__HIDDEN void uvpool__supply_destroy(uvpool__group_t *g);
UVPOOL__HIDDEN void uvpool__supply_fork_child(uvpool__group_t *g);
/* Spin lengths (0: do not spin): an idle worker's, given whether the loop
 * thread caught its last completion spinning; the loop thread's, given
 * whether the wait is a probe (deliver.c). And what a wait, or a wake-up,
 * turned out to take. */
UVPOOL__HIDDEN uint64_t uvpool__spin_len_idle(uvpool__group_t *g, bool caught);
UVPOOL__HIDDEN uint64_t uvpool__spin_len_loop(uvpool_t *pool, bool probe);
UVPOOL__HIDDEN void uvpool__spin_saw_wait(uvpool__spinpred_t *p, uint64_t ns);
UVPOOL__HIDDEN void uvpool__spin_saw_wake(uvpool__spinpred_t *p, uint64_t ns);
/* What a spin of ns found (hit) or not, for the waste bound. */
UVPOOL__HIDDEN void uvpool__spin_spent(uvpool__group_t *g, uint64_t ns,
                                       bool hit);
/* Any thread, without mu: workers started and not yet left. */
UVPOOL__HIDDEN unsigned uvpool__supply_workers(const uvpool__group_t *g);
/* The group's worker counts and spin totals for uvpool_stats. */
UVPOOL__HIDDEN void uvpool__supply_stats_locked(const uvpool__group_t *g,
                                                uvpool_stats_t *out);
/* Starts a worker if one more is wanted for the tasks that run or wait,
 * plus `incoming` about to be queued; 0 also when none is wanted. */
UVPOOL__HIDDEN int uvpool__supply_spawn_locked(uvpool__group_t *g,
                                               size_t incoming);
/* Makes sure a worker exists for a task about to be queued. Fails only if
 * none exists and none can be started. */
UVPOOL__HIDDEN int uvpool__supply_ensure_locked(uvpool__group_t *g);
/* A task was queued: makes sure a worker will take it. */
UVPOOL__HIDDEN void uvpool__supply_kick_locked(uvpool__group_t *g);
/* The same after a lock-free push, without mu (takes it if needed).
 * Returns false when a spinning worker will take the task at once: no
 * wake-up, and no busy worker, stands between it and a worker. */
UVPOOL__HIDDEN bool uvpool__supply_kick(uvpool__group_t *g);
/* Wakes a parked worker if tasks wait that no awake worker will take. */
UVPOOL__HIDDEN void uvpool__supply_wake_locked(uvpool__group_t *g);
/* Wakes every parked worker: the pool stops taking work. */
UVPOOL__HIDDEN void uvpool__supply_broadcast_locked(uvpool__group_t *g);
/* A worker's life, told by worker.c. */
UVPOOL__HIDDEN void uvpool__supply_ready_locked(uvpool__group_t *g,
                                                uvpool__worker_t *w);
UVPOOL__HIDDEN void uvpool__supply_task_begin_locked(uvpool__group_t *g,
                                                     uvpool__worker_t *w,
                                                     uvpool_future_t *f);
/* run_ns: the task's run time, when it was measured (every
 * UVPOOL__TASK_SAMPLE-th task of a worker), else 0. */
UVPOOL__HIDDEN void uvpool__supply_task_end_locked(uvpool__group_t *g,
                                                   uvpool__worker_t *w,
                                                   uint64_t run_ns);
#define UVPOOL__TASK_SAMPLE 8u
UVPOOL__HIDDEN void uvpool__supply_busy_locked(uvpool__group_t *g, bool busy);
/* The worker leaves: it looks at the queue no more. */
UVPOOL__HIDDEN void uvpool__supply_stop_looking_locked(uvpool__group_t *g,
                                                       uvpool__worker_t *w);
/* Nothing to run: spins or parks (mu dropped meanwhile). Returns false
 * when the worker should leave for being idle too long. */
UVPOOL__HIDDEN bool uvpool__supply_idle_locked(uvpool__group_t *g,
                                               uvpool__worker_t *w);
UVPOOL__HIDDEN void uvpool__supply_leave_locked(uvpool__group_t *g,
                                                uvpool__worker_t *w);
UVPOOL__HIDDEN bool uvpool__supply_reap_due_locked(const uvpool__group_t *g);
/* Not under mu: joins the workers that left. */
UVPOOL__HIDDEN void uvpool__supply_reap(uvpool__group_t *g);
/* The monitor keeps the parked workers' idle timeout: when it is next
 * due (0: no worker may retire), and the wake-up of those past it. */
UVPOOL__HIDDEN uint64_t
uvpool__supply_retire_due_locked(const uvpool__group_t *g);
UVPOOL__HIDDEN void uvpool__supply_retire_locked(uvpool__group_t *g,
                                                 uint64_t now);
/* Asks every running task, and every task that starts from now on, to
 * stop (uvpool_cancel_requested()). */
UVPOOL__HIDDEN void uvpool__supply_cancel_running_locked(uvpool__group_t *g,
                                                         uvpool_t *pool);
/* The monitor's questions. */
UVPOOL__HIDDEN void uvpool__supply_note_started_locked(uvpool__group_t *g);
/* How many workers ran one task for the whole tick and should get help:
 * one asleep in its task (asleep(tid), asked with mu dropped, only with
 * peek) always; one running only while the CPUs are not saturated, or
 * after UVPOOL__RUNNING_GRACE_TICKS ticks. */
UVPOOL__HIDDEN size_t uvpool__supply_stuck_locked(uvpool__group_t *g,
                                                  bool saturated, bool peek,
                                                  bool (*asleep)(int tid));
/* Wakes or starts workers for n waiting tasks; returns whether it did. */
UVPOOL__HIDDEN bool uvpool__supply_add_locked(uvpool__group_t *g, size_t n);
/* Whether tasks wait that no free worker will take. */
UVPOOL__HIDDEN bool uvpool__supply_backlog_locked(const uvpool__group_t *g);
/* For the exit handler: workers other than me; *running gets how many of
 * them run a task. */
UVPOOL__HIDDEN unsigned uvpool__supply_others_locked(const uvpool__group_t *g,
                                                     const uvpool__worker_t *me,
                                                     unsigned *running);
/* For fork_prepare: whether a worker is between its task and publishing
 * its outcome. */
UVPOOL__HIDDEN bool uvpool__supply_publishing(const uvpool__group_t *g);
/* Not under mu: waits until every outcome a worker held when it was
 * called is published. A closing member that nothing of is queued,
 * running or undelivered calls it before closing its handle: from then on
 * no worker touches it. Each wait is one publish (a push and a send). */
UVPOOL__HIDDEN void uvpool__supply_quiesce(uvpool__group_t *g);

/* worker.c: the worker thread. */
UVPOOL__HIDDEN void uvpool__worker_main(void *arg);
UVPOOL__HIDDEN uvpool__worker_t *uvpool__current_worker(void);
UVPOOL__HIDDEN void uvpool__forget_worker(void);

/* deliver.c: the loop side, and the done list it consumes. */
UVPOOL__HIDDEN void uvpool__done_push(uvpool_t *pool, uvpool_future_t *f);
/* Pushes the chain first..last (linked through next) in one step. */
UVPOOL__HIDDEN void uvpool__done_push_chain(uvpool_t *pool,
                                            uvpool_future_t *first,
                                            uvpool_future_t *last);
/* Whether a done-list push of this thread woke the loop thread since the
 * last call; clears it. */
UVPOOL__HIDDEN bool uvpool__woke_loop_take(void);
/* Whether a push of this thread was seen by a loop thread spinning for it
 * since the last call; clears it. */
UVPOOL__HIDDEN bool uvpool__caught_take(void);
UVPOOL__HIDDEN void uvpool__async_cb(uv_async_t *handle);
/* The close callback of the pool's three handles. */
UVPOOL__HIDDEN void uvpool__on_handle_closed(uv_handle_t *h);
UVPOOL__HIDDEN void uvpool__keepalive_locked(uvpool_t *pool);

/* pool.c */
UVPOOL__HIDDEN void uvpool__pool_release(uvpool_t *pool);

/* service.c: the group's service threads, and thread names. */
/* Names the calling thread "<group name><suffix>" (15 characters). */
UVPOOL__HIDDEN void uvpool__thread_name(const uvpool__group_t *g,
                                        const char *suffix);
UVPOOL__HIDDEN int uvpool__service_init(uvpool__service_t *s);
UVPOOL__HIDDEN void uvpool__service_destroy(uvpool__service_t *s);
/* Under mu: starts fn(g) as s, unless it runs or was stopped. */
UVPOOL__HIDDEN int uvpool__service_start_locked(uvpool__group_t *g,
                                                uvpool__service_t *s,
                                                void (*fn)(void *));
/* Not under mu: stops s for good and joins it. Its thread function
 * returns once it sees s->stop, under mu; s->cv wakes it. */
UVPOOL__HIDDEN void uvpool__service_stop(uvpool__group_t *g,
                                         uvpool__service_t *s);
UVPOOL__HIDDEN void uvpool__service_fork_child(uvpool__service_t *s);

/* group.c: a group's members and life (under the group's mu unless
 * said). */
/* Not under mu: makes pool a member of opts->share's group, or of a new
 * group with opts' worker options. UV_EINVAL: worker options set on a
 * sharing pool; UV_ESHUTDOWN: the shared pool closes or exits. */
UVPOOL__HIDDEN int uvpool__group_join(uvpool_t *pool,
                                      const uvpool_options_t *opts);
/* Not under mu: pool's memory is released; the last member frees the
 * group. */
UVPOOL__HIDDEN void uvpool__group_leave(uvpool_t *pool);
/* A member stopped taking work (its close or exit began). */
UVPOOL__HIDDEN void uvpool__group_stop_taking_locked(uvpool__group_t *g);
/* Whether idle workers leave: no member takes work, or the group broke. */
UVPOOL__HIDDEN bool uvpool__group_stopping(const uvpool__group_t *g);
/* Asks every member's loop to look again (a worker left: a close may
 * finish, a zombie may be joined). */
UVPOOL__HIDDEN void uvpool__group_poke_locked(uvpool__group_t *g);
/* Not under mu: stops and joins the service threads and the workers
 * that left. */
UVPOOL__HIDDEN void uvpool__group_stop_threads(uvpool__group_t *g);
UVPOOL__HIDDEN void uvpool__group_fork_child(uvpool__group_t *g);
/* Under mu: starts one of the group's threads, counted in nthreads until
 * uvpool__thread_join; UV_ESHUTDOWN once the group's threads stopped. */
UVPOOL__HIDDEN int uvpool__thread_start_locked(uvpool__group_t *g,
                                               uv_thread_t *tid, size_t stack,
                                               void (*fn)(void *), void *arg);
/* Not under mu: joins a thread started by uvpool__thread_start_locked. */
UVPOOL__HIDDEN void uvpool__thread_join(uvpool__group_t *g, uv_thread_t *tid);

/* owner.c */
UVPOOL__HIDDEN int uvpool__owner_init(uvpool_t *pool);
/* Closes the prepare and check handles; cb runs once for each. */
UVPOOL__HIDDEN void uvpool__owner_close(uvpool_t *pool, uv_close_cb cb);
UVPOOL__HIDDEN bool uvpool__owner_handle(const uvpool_t *pool,
                                         const uv_handle_t *h);
/* Whether uvpool__owner_close was called (here or, before fork, in the
 * parent). */
UVPOOL__HIDDEN bool uvpool__owner_closing(const uvpool_t *pool);
/* Makes the calling thread the runner and takes the owner lock, waiting
 * for a step of the previous runner to end. No lock may be held. On the
 * loop thread, or where the loop is known not to run. */
UVPOOL__HIDDEN void uvpool__owner_acquire(uvpool_t *pool);
/* For the loop-thread-only calls: as uvpool__owner_acquire, unless the
 * loop runs on another thread now (it polls there): then UV_EINVAL. */
UVPOOL__HIDDEN int uvpool__owner_claim(uvpool_t *pool);
UVPOOL__HIDDEN void uvpool__owner_fork_child(uvpool_t *pool);

/* exit.c */
/* Under mu: a worker left, a task finished or a held task went: the exit
 * handler, if it waits, looks again. */
UVPOOL__HIDDEN void uvpool__exit_changed_locked(uvpool__group_t *g);
UVPOOL__HIDDEN int uvpool__registry_add(uvpool_t *pool);
UVPOOL__HIDDEN void uvpool__registry_remove(uvpool_t *pool);
UVPOOL__HIDDEN bool uvpool__registry_has_handle(const uv_handle_t *h);

/* Pushes the chain first..last, linked through next, on a multi-producer
 * stack (the done list, the free stack) and returns whether it was empty;
 * uvpool__stack_push pushes one future. Its consumer takes the whole stack
 * with one exchange, so there is no ABA. */
static inline bool uvpool__stack_push_chain(_Atomic(uvpool_future_t *) *top,
                                            uvpool_future_t *first,
                                            uvpool_future_t *last) {
  uvpool_future_t *head = atomic_load_explicit(top, memory_order_relaxed);
  do {
    last->next = head;
    /* seq_cst: a done-list pusher looks at loop_watching next. */
  } while (!atomic_compare_exchange_weak_explicit(
      top, &head, first, memory_order_seq_cst, memory_order_relaxed));
  return head == NULL;
}

static inline bool uvpool__stack_push(_Atomic(uvpool_future_t *) *top,
                                      uvpool_future_t *f) {
  return uvpool__stack_push_chain(top, f, f);
}

/* Reverses a list linked through next: the multi-producer stacks hand
 * their consumers newest first, and these want submission or completion
 * order. */
static inline uvpool_future_t *uvpool__list_reverse(uvpool_future_t *f) {
  uvpool_future_t *out = NULL;
  while (f != NULL) {
    uvpool_future_t *next = f->next;
    f->next = out;
    out = f;
    f = next;
  }
  return out;
}

/* True when the pool's reference is f's only one. Then no other thread
 * can reach f (waiting, registering a callback and cancelling all need a
 * reference), so whoever the pool lets handle f (the worker running it,
 * the loop thread delivering it) may write its state word with plain
 * stores instead of read-modify-writes. */
static inline bool uvpool__pool_ref_only(uvpool_future_t *f) {
  return atomic_load_explicit(&f->refs, memory_order_acquire) == 1;
}

/* The calling thread, as the owner lock records it. Asked on every submit
 * and free: pthread_self() reads a register, with no system call. */
static inline uintptr_t uvpool__self(void) { return (uintptr_t)pthread_self(); }

/* Takes the owner lock if the calling thread runs the pool's loop (or
 * holds the lock already: a nested step); returns whether it did. Never
 * waits. Until uvpool__owner_leave the runner's private state is the
 * caller's. */
static inline bool uvpool__owner_enter(uvpool_t *pool) {
  uvpool__owner_t *o = &pool->owner;
  uintptr_t self = uvpool__self(), none = 0;
  if (atomic_load_explicit(&o->holder, memory_order_relaxed) == self) {
    o->depth++;
    return true;
  }
  if (atomic_load_explicit(&o->runner, memory_order_relaxed) != self ||
      !atomic_compare_exchange_strong_explicit(
          &o->holder, &none, self, memory_order_acquire, memory_order_relaxed))
    return false;
  /* The loop may have moved between the look and the lock. */
  if (atomic_load_explicit(&o->runner, memory_order_relaxed) != self) {
    atomic_store_explicit(&o->holder, 0, memory_order_release);
    return false;
  }
  o->depth = 1;
  return true;
}

static inline void uvpool__owner_leave(uvpool_t *pool) {
  if (--pool->owner.depth == 0)
    atomic_store_explicit(&pool->owner.holder, 0, memory_order_release);
}

/* Whether the calling thread holds the owner lock (inside a step). */
static inline bool uvpool__owner_held(const uvpool_t *pool) {
  return atomic_load_explicit(&((uvpool_t *)pool)->owner.holder,
                              memory_order_relaxed) == uvpool__self();
}

static inline uvpool_t *uvpool__future_pool(const uvpool_future_t *f) {
  return f->pool;
}

/* Spins until ready(obj) holds or the clock passes until, reading the
 * clock once every 64 pauses; returns whether ready(obj) held. */
static inline bool uvpool__spin_until(void *obj, uint64_t until,
                                      bool (*ready)(void *)) {
  do {
    for (int i = 0; i < 64; i++) {
      if (ready(obj))
        return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  } while (uv_hrtime() < until);
  return false;
}

/* The pool's lifecycle: one word of stages, each a bit that is set once
 * (a fork child's disown clears CLOSING: the parent's close is not the
 * child's). Written under mu; read under mu, or without it as a hint, or
 * by the owner, whose own calls set CLOSING. */
#define UVPOOL__LIFE_READY 0x10u  /* its handle is set up (uvpool_new) */
#define UVPOOL__LIFE_CLOSING 0x1u /* uvpool_close began */
#define UVPOOL__LIFE_CLOSED                                                    \
  0x2u                            /* the close decided to finish: no more      \
                                     callbacks, sends or threads for it */
#define UVPOOL__LIFE_EXITING 0x4u /* process exit began */
#define UVPOOL__LIFE_FORKED 0x8u  /* inherited by a fork() child */

static inline uint32_t uvpool__life(const uvpool_t *p) {
  return atomic_load_explicit(&((uvpool_t *)p)->life, memory_order_seq_cst);
}

static inline void uvpool__life_set(uvpool_t *p, uint32_t stage) {
  atomic_fetch_or_explicit(&p->life, stage, memory_order_seq_cst);
}

static inline void uvpool__life_clear(uvpool_t *p, uint32_t stage) {
  atomic_fetch_and_explicit(&p->life, ~stage, memory_order_seq_cst);
}

static inline bool uvpool__closing(const uvpool_t *p) {
  return (uvpool__life(p) & UVPOOL__LIFE_CLOSING) != 0;
}

static inline bool uvpool__closed(const uvpool_t *p) {
  return (uvpool__life(p) & UVPOOL__LIFE_CLOSED) != 0;
}

static inline bool uvpool__exiting(const uvpool_t *p) {
  return (uvpool__life(p) & UVPOOL__LIFE_EXITING) != 0;
}

static inline bool uvpool__forked(const uvpool_t *p) {
  return (uvpool__life(p) & UVPOOL__LIFE_FORKED) != 0;
}

/* It takes work: open, not closing, not exiting, not inherited. */
static inline bool uvpool__accepts_work(const uvpool_t *p) {
  return (uvpool__life(p) & (UVPOOL__LIFE_CLOSING | UVPOOL__LIFE_CLOSED |
                             UVPOOL__LIFE_EXITING | UVPOOL__LIFE_FORKED)) == 0;
}

/* A push may wake the loop with uv_async_send: not before the handle is
 * set up (a group may list a pool uvpool_new is still making), not once
 * the close decided to finish (the handle closes), not once exit began
 * (the loop may be gone), not in a fork child before the child closes the
 * pool (the parent's wake-up state is stale). */
static inline bool uvpool__may_send(const uvpool_t *p) {
  uint32_t l = uvpool__life(p);
  return (l & UVPOOL__LIFE_READY) != 0 &&
         (l & (UVPOOL__LIFE_CLOSED | UVPOOL__LIFE_EXITING)) == 0 &&
         ((l & UVPOOL__LIFE_FORKED) == 0 || (l & UVPOOL__LIFE_CLOSING) != 0);
}

/* Done callbacks may run: not once exit began (their loop may be gone). */
static inline bool uvpool__may_deliver(const uvpool_t *p) {
  return !uvpool__exiting(p);
}

/* A millisecond timeout or deadline beyond what the nanosecond clock can
 * add means none (-1), not a wrapped sum that expires at once. */
static inline int64_t uvpool__ms_or_none(int64_t ms) {
  return ms > INT64_MAX / 1000000 ? -1 : ms;
}

/* Codes from user hooks and pthreads: a positive errno becomes libuv's
 * negative form (libuv's codes are -errno on Unix). */
static inline int uvpool__uv_code(int rc) { return rc > 0 ? -rc : rc; }

static inline bool uvpool__settled(uint32_t s) {
  return (s & UVPOOL__STATE_MASK) >= UVPOOL_DONE;
}

#endif /* UVPOOL_INTERNAL_H */
