/* The inbox, the run queue and the lanes: a group's, shared by its pools.
 *
 * Inbox: plain tasks submitted on a member's loop thread skip g->mu. They
 * are pushed on a multi-producer stack (Treiber's, like the done list)
 * whose low bit, INBOX_CLOSED, refuses further pushes once the group stops
 * taking work (exit, a broken group, a fork child); a member's own close
 * stops its pushes earlier, under the owner lock, which uvpool_close
 * takes (see submit.c). Futures are 64-byte aligned, so the bit is free.
 * Whoever holds mu and needs the run queue complete (a cancel, a locked submit,
 * stats, a worker whose run queue ran dry) first moves the whole inbox to
 * the run queue's tail in submission order. Every push into the run queue
 * is preceded by that move, so tasks keep one global submission order,
 * and a worker may pop the run queue's head without it (the inbox's tasks
 * are younger, see uvpool__pend_pop).
 *
 * Run queue: one doubly linked list (O(1) cancel), ordered by priority,
 * FIFO within a priority, across the group's pools. Each task counts in
 * its pool's nqueued (its stats, its max_queued, its close) as well. Starvation
 * rule: a queued task can be overtaken by later, higher-priority tasks at most
 * UVPOOL__MAX_OVERTAKE (32) times; after that it is a barrier that no later
 * task passes. So a task starts after at most 32 tasks submitted after it.
 * Equal priorities (every plain uvpool_submit) append at the tail in O(1).
 *
 * Lanes: a lane with max_running > 0 admits that many of its tasks to the
 * run queue (or to workers) at a time; the rest wait on the lane's parked
 * list, so workers never pick a task they may not run, and other lanes are
 * served meanwhile. A finished or cancelled task admits the next.
 *
 * A future is on at most one list at a time (run queue, a lane's parked
 * list, the done list or the free list), so the same links serve all. */
#include "internal.h"

#include <string.h>

uvpool__ext_t *uvpool__ext_of(const uvpool_future_t *f) {
  uint32_t s = atomic_load_explicit(&((uvpool_future_t *)f)->state,
                                    memory_order_relaxed);
  return (s & UVPOOL__F_EXT) ? f->arg : NULL;
}

static int prio_of(const uvpool_future_t *f) {
  const uvpool__ext_t *e = uvpool__ext_of(f);
  return e != NULL ? e->priority : 0;
}

static uint32_t overtaken(const uvpool_future_t *f) {
  uint32_t s = atomic_load_explicit(&((uvpool_future_t *)f)->state,
                                    memory_order_relaxed);
  return (s & UVPOOL__OVERTAKE_MASK) / UVPOOL__OVERTAKE_ONE;
}

/* The head's prev is not kept (it may be stale): taking the head then
 * writes nothing in the next task's line, which is likely in no cache of
 * this core, and the unlock that follows need not wait for it. */
static void list_unlink(uvpool__futures_t *l, uvpool_future_t *f) {
  if (f == l->head) {
    l->head = f->next;
    if (f->next == NULL)
      l->tail = NULL;
    else /* fetched while f runs, for the next pop */
      __builtin_prefetch(f->next, 1);
  } else {
    f->prev->next = f->next;
    if (f->next != NULL)
      f->next->prev = f->prev;
    else
      l->tail = f->prev;
  }
  f->next = f->prev = NULL;
}

/* Inserts f after pos (NULL: at the head). */
static void list_insert_after(uvpool__futures_t *l, uvpool_future_t *pos,
                              uvpool_future_t *f) {
  f->prev = pos;
  f->next = pos != NULL ? pos->next : l->head;
  if (f->next != NULL)
    f->next->prev = f;
  else
    l->tail = f;
  if (pos != NULL)
    pos->next = f;
  else
    l->head = f;
}

static void list_insert_ordered(uvpool__futures_t *l, uvpool_future_t *f) {
  int p = prio_of(f);
  uvpool_future_t *pos = l->tail;
  while (pos != NULL && prio_of(pos) < p &&
         overtaken(pos) < UVPOOL__MAX_OVERTAKE)
    pos = pos == l->head ? NULL : pos->prev;
  for (uvpool_future_t *n = pos != NULL ? pos->next : l->head; n != NULL;
       n = n->next)
    atomic_fetch_add_explicit(&n->state, UVPOOL__OVERTAKE_ONE,
                              memory_order_relaxed);
  list_insert_after(l, pos, f);
}

#define INBOX_CLOSED ((uintptr_t)1)

bool uvpool__inbox_push_chain(uvpool__group_t *g, uvpool_future_t *newest,
                              uvpool_future_t *oldest) {
  uintptr_t old = atomic_load_explicit(&g->inbox, memory_order_relaxed);
  do {
    if (old & INBOX_CLOSED)
      return false;
    // NOLINTNEXTLINE(performance-no-int-to-ptr)
    oldest->next = (uvpool_future_t *)old;
    /* seq_cst: the caller's following loads of the worker counters must
     * not pass this store (see uvpool__supply_kick). */
  } while (!atomic_compare_exchange_weak_explicit(
      &g->inbox, &old, (uintptr_t)newest, memory_order_seq_cst,
      memory_order_relaxed));
  return true;
}

bool uvpool__inbox_push(uvpool__group_t *g, uvpool_future_t *f) {
  return uvpool__inbox_push_chain(g, f, f);
}

void uvpool__inbox_close(uvpool__group_t *g) {
  atomic_fetch_or_explicit(&g->inbox, INBOX_CLOSED, memory_order_seq_cst);
}

bool uvpool__inbox_empty(const uvpool__group_t *g) {
  return (atomic_load_explicit(&((uvpool__group_t *)g)->inbox,
                               memory_order_seq_cst) &
          ~INBOX_CLOSED) == 0;
}

static void run_queue_add(uvpool__group_t *g, uvpool_future_t *f);

/* Changes the run queue's count by d. Every writer holds mu, so a plain
 * sum will do; it is stored atomically for spinners that read it without
 * mu. */
static void nqueued_adjust(uvpool__group_t *g, ptrdiff_t d) {
  size_t n = atomic_load_explicit(&g->q.nqueued, memory_order_relaxed);
  atomic_store_explicit(&g->q.nqueued, n + (size_t)d, memory_order_relaxed);
}

/* n lock-free submits of pool moved from the inbox to the run queue. */
static void member_taken(uvpool_t *pool, size_t n) {
  pool->nqueued += n;
  pool->inbox_taken += n;
}

/* Appends the inbox's tasks, newest first from `newest`, to the run
 * queue's tail in one pass: reversing the links and setting prev as it
 * goes. The inbox holds plain tasks only (priority 0), so behind a tail of
 * priority >= 0 this is what inserting each in order does. A long inbox
 * was written by the loop thread's core: one walk, not two, over lines
 * that are not in this core's cache. */
static void inbox_append(uvpool__group_t *g, uvpool_future_t *newest) {
  uvpool__futures_t *l = &g->q.pend;
  uvpool_future_t *f = newest->next, *oldest = newest;
  uvpool_t *run_pool = newest->pool; /* the members' counts, by runs */
  size_t n = 1, run = 1;
  newest->next = NULL;
  while (f != NULL) {
    uvpool_future_t *next = f->next;
    f->next = oldest;
    oldest->prev = f;
    oldest = f;
    f = next;
    n++;
    if (oldest->pool != run_pool) {
      member_taken(run_pool, run);
      run_pool = oldest->pool;
      run = 0;
    }
    run++;
  }
  member_taken(run_pool, run);
  oldest->prev = l->tail;
  if (l->tail != NULL)
    l->tail->next = oldest;
  else
    l->head = oldest;
  l->tail = newest;
  nqueued_adjust(g, (ptrdiff_t)n);
}

/* Under mu. Moves the inbox to the run queue, oldest first. The exchange
 * keeps the closed bit; only holders of mu take, so there is no ABA. */
void uvpool__inbox_drain_locked(uvpool__group_t *g) {
  /* seq_cst: callers that just counted themselves parked, asleep or gone
   * look here next (see uvpool__kick). */
  uintptr_t old = atomic_load_explicit(&g->inbox, memory_order_seq_cst);
  uvpool_future_t *f;
  if ((old & ~INBOX_CLOSED) == 0)
    return;
  while (!atomic_compare_exchange_weak_explicit(
      &g->inbox, &old, old & INBOX_CLOSED, memory_order_acquire,
      memory_order_relaxed))
    ;
  // NOLINTNEXTLINE(performance-no-int-to-ptr)
  f = (uvpool_future_t *)(old & ~INBOX_CLOSED);
  if (g->q.pend.tail == NULL || prio_of(g->q.pend.tail) >= 0) {
    inbox_append(g, f);
    return;
  }
  /* Behind negative priorities, which plain tasks may overtake. */
  f = uvpool__list_reverse(f);
  while (f != NULL) {
    uvpool_future_t *next = f->next;
    run_queue_add(g, f);
    f->pool->inbox_taken++;
    f = next;
  }
}

/* Every task in the run queue or parked on a lane counts in its pool's
 * nqueued; the run queue's own length is the group's nqueued. */
static void run_queue_add(uvpool__group_t *g, uvpool_future_t *f) {
  list_insert_ordered(&g->q.pend, f);
  nqueued_adjust(g, 1);
  f->pool->nqueued++;
}

static void run_queue_del(uvpool__group_t *g, uvpool_future_t *f) {
  list_unlink(&g->q.pend, f);
  nqueued_adjust(g, -1);
  f->pool->nqueued--;
}

size_t uvpool__runnable(const uvpool__group_t *g) {
  return atomic_load_explicit(&((uvpool__group_t *)g)->q.nqueued,
                              memory_order_relaxed);
}

size_t uvpool__runnable_estimate(const uvpool__group_t *g) {
  /* Every inbox push was counted in its pool's loop_submitted before it
   * was made, and what was taken was pushed: no underflow. */
  size_t n = atomic_load_explicit(&((uvpool__group_t *)g)->q.nqueued,
                                  memory_order_relaxed);
  UVPOOL__LIST_EACH(p, &g->pools, uvpool_t, g_link)
  n += (size_t)(atomic_load_explicit(&p->loop_submitted, memory_order_relaxed) -
                p->inbox_taken);
  return n;
}

size_t uvpool__queued(const uvpool_t *pool) { return pool->nqueued; }

void uvpool__pend_push(uvpool__group_t *g, uvpool_future_t *f) {
  uvpool__ext_t *e = uvpool__ext_of(f);
  unsigned lane = e != NULL ? e->lane : 0;
  uvpool__inbox_drain_locked(g); /* earlier submissions go first */
  if (lane != 0) {
    uvpool__lane_t *l = &g->q.lanes[lane];
    if (l->admitted >= l->max_running) {
      atomic_fetch_or_explicit(&f->state, UVPOOL__F_PARKED,
                               memory_order_relaxed);
      list_insert_ordered(&l->parked, f);
      g->q.nlane_parked++;
      f->pool->nqueued++;
      goto deadline;
    }
    l->admitted++;
  }
  run_queue_add(g, f);
deadline:
  if (e != NULL && e->deadline != 0)
    uvpool__deadline_add_locked(g, e);
}

/* Takes the next task to run. Its lane slot stays taken until
 * uvpool__lane_done. */
uvpool_future_t *uvpool__pend_pop(uvpool__group_t *g) {
  uvpool_future_t *f;
  uvpool__ext_t *e;
  /* The run queue's tasks are older than the inbox's, and a plain task
   * from the inbox overtakes only negative priorities: while the head is
   * not one, it goes first and the inbox is left to grow. Draining it
   * only when needed lets the worker take the loop thread's pushes in
   * batches instead of one contended exchange (and cache line) per task. */
  f = g->q.pend.head;
  if (f == NULL || prio_of(f) < 0) {
    uvpool__inbox_drain_locked(g);
    f = g->q.pend.head;
  }
  if (f == NULL)
    return NULL;
  g->q.npopped++;
  run_queue_del(g, f);
  e = uvpool__ext_of(f);
  if (e != NULL && e->deadline != 0)
    uvpool__deadline_remove_locked(g, e);
  return f;
}

void uvpool__lane_done(uvpool__group_t *g, unsigned lane) {
  uvpool__lane_t *l;
  if (lane == 0)
    return;
  l = &g->q.lanes[lane];
  l->admitted--;
  while (l->parked.head != NULL && l->admitted < l->max_running) {
    uvpool_future_t *f = l->parked.head;
    list_unlink(&l->parked, f);
    g->q.nlane_parked--;
    f->pool->nqueued--;
    atomic_fetch_and_explicit(&f->state, ~UVPOOL__F_PARKED,
                              memory_order_relaxed);
    l->admitted++;
    run_queue_add(g, f);
  }
  uvpool__supply_wake_locked(g);
}

void uvpool__held_add_locked(uvpool_t *pool, uvpool_future_t *f) {
  list_insert_after(&pool->held, pool->held.tail, f);
  pool->nheld++;
}

void uvpool__held_remove_locked(uvpool_t *pool, uvpool_future_t *f) {
  list_unlink(&pool->held, f);
  pool->nheld--;
  uvpool__exit_changed_locked(pool->g); /* the exit handler waits for these */
}

void uvpool__held_cancel_all(uvpool_t *pool, int status) {
  bool cancel = status == UV_ECANCELED;
  while (pool->held.head != NULL) {
    uvpool_future_t *f = pool->held.head;
    uvpool__held_remove_locked(pool, f);
    atomic_fetch_and_explicit(&f->state, ~UVPOOL__F_HELD, memory_order_relaxed);
    uvpool__settle_task_locked(
        pool, f, cancel ? UVPOOL_CANCELLED : UVPOOL_FAILED, status, NULL);
  }
}

bool uvpool__cancelling_queued_locked(const uvpool_t *pool) {
  return (uvpool__closing(pool) &&
          (pool->close_flags & UVPOOL_CANCEL_PENDING)) ||
         (uvpool__exiting(pool) &&
          (pool->opts.flags & UVPOOL_EXIT_CANCEL_PENDING));
}

/* Settles a queued task without running it: cancelled (UV_ECANCELED,
 * UV_ETIMEDOUT) or failed (a broken group's code). */
void uvpool__pend_cancel(uvpool__group_t *g, uvpool_future_t *f, int status) {
  uvpool__ext_t *e = uvpool__ext_of(f);
  unsigned lane = e != NULL ? e->lane : 0;
  uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
  bool cancel = status == UV_ECANCELED || status == UV_ETIMEDOUT;
  uvpool__inbox_drain_locked(g); /* f may still be in the inbox */
  if (s & UVPOOL__F_PARKED) {
    list_unlink(&g->q.lanes[lane].parked, f);
    g->q.nlane_parked--;
    f->pool->nqueued--;
  } else {
    run_queue_del(g, f);
    uvpool__lane_done(g, lane);
  }
  if (e != NULL)
    f->arg = e->arg; /* before the flag clears: see uvpool_future_arg */
  atomic_fetch_and_explicit(&f->state, ~(UVPOOL__F_EXT | UVPOOL__F_PARKED),
                            memory_order_release);
  if (e != NULL) {
    if (e->deadline != 0)
      uvpool__deadline_remove_locked(g, e);
    uvpool__free(e);
  }
  uvpool__settle_task_locked(
      f->pool, f, cancel ? UVPOOL_CANCELLED : UVPOOL_FAILED, status, NULL);
}

void uvpool__pend_cancel_all(uvpool__group_t *g, int status) {
  /* Cancelling admitted tasks admits parked ones into the run queue, so
   * draining the run queue drains the lanes too. */
  uvpool__inbox_drain_locked(g);
  while (g->q.pend.head != NULL)
    uvpool__pend_cancel(g, g->q.pend.head, status);
  for (unsigned i = 1; i < g->q.nlanes; i++)
    while (g->q.lanes[i].parked.head != NULL)
      uvpool__pend_cancel(g, g->q.lanes[i].parked.head, status);
}

void uvpool__pend_cancel_pool(uvpool__group_t *g, uvpool_t *pool, int status) {
  uvpool_future_t *f;
  uvpool__inbox_drain_locked(g);
  f = g->q.pend.head;
  while (f != NULL) {
    uvpool_future_t *next = f->next;
    if (f->pool == pool) {
      uvpool__pend_cancel(g, f, status);
      /* It may have admitted a parked task anywhere in the queue. */
      if (g->q.nlanes > 1)
        next = g->q.pend.head;
    }
    f = next;
  }
  for (unsigned i = 1; i < g->q.nlanes; i++) {
    f = g->q.lanes[i].parked.head;
    while (f != NULL) {
      uvpool_future_t *next = f->next;
      if (f->pool == pool)
        uvpool__pend_cancel(g, f, status);
      f = next;
    }
  }
}

/* Lane 0 is implicit: the first lane made is 1. */
int uvpool__lane_add_locked(uvpool__group_t *g, unsigned max_running,
                            unsigned *lane_out) {
  unsigned n = g->q.nlanes == 0 ? 2 : g->q.nlanes + 1;
  uvpool__lane_t *lanes = uvpool__malloc(n * sizeof(*lanes));
  if (lanes == NULL)
    return UV_ENOMEM;
  memset(lanes, 0, n * sizeof(*lanes));
  if (g->q.nlanes != 0)
    memcpy(lanes, g->q.lanes, g->q.nlanes * sizeof(*lanes));
  uvpool__free(g->q.lanes);
  g->q.lanes = lanes;
  g->q.nlanes = n;
  lanes[n - 1].max_running = max_running;
  *lane_out = n - 1;
  return 0;
}

void uvpool__runq_destroy(uvpool__group_t *g) { uvpool__free(g->q.lanes); }
