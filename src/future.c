/* Futures: slab allocation, reference counting, settlement, callbacks,
 * waiting and cancellation.
 *
 * Invariants:
 * - The pool holds one reference for as long as a future is queued,
 *   running or on the done list; the application holds the others.
 * - A future that is not free counts once in pool->live, so the pool's
 *   memory (its slabs, its mutex) outlives every future handed out.
 * - State changes are atomic read-modify-writes on the state word, because
 *   waiters set F_WAITERS without the mutex. They happen under pool->g->mu,
 *   except that a worker settles the task it ran without it (nobody else
 *   may settle a running task).
 * - The callback fields are guarded by F_LOCK, a bit lock in the state
 *   word, so registering and delivering callbacks never touch pool->g->mu in
 *   the common case. Lock order: pool->g->mu, then F_LOCK.
 * - Once settled, result and status are written before the state (release)
 *   and read after it (acquire); they never change again.
 * - Watchers (combinators' internal callbacks) sit in the callback list as
 *   nodes with `watched` set, announced by F_WATCHED. Settling takes them
 *   out under F_LOCK before the future reaches the done list, so delivery
 *   never sees one, and they run on the settling thread once it holds no
 *   lock: a settler that holds pool->g->mu (everyone but a worker finishing
 *   its own task) leaves them in a per-thread list that
 *   uvpool__watchers_run() empties after the unlock. */
#include "internal.h"

#include <assert.h>
#include <sched.h>
#include <string.h>

_Static_assert(sizeof(uvpool_future_t) == 64, "a future is one cache line");
_Static_assert(UVPOOL__SLAB_SLOTS * sizeof(uvpool_future_t) ==
                   UVPOOL__SLAB_SIZE,
               "a slab is all futures");

static bool slab_grow(uvpool_t *pool) {
  uvpool__slab_t *slab = uvpool__malloc(sizeof(*slab));
  uvpool_future_t *slots;
  if (slab == NULL)
    return false;
  slots = uvpool__aligned_alloc(sizeof(*slots), UVPOOL__SLAB_SIZE);
  if (slots == NULL) {
    uvpool__free(slab);
    return false;
  }
  slab->slots = slots;
  slab->next = pool->slabs;
  pool->slabs = slab;
  /* Link slots in address order so that fresh futures are handed out
   * sequentially (friendlier to the prefetcher). */
  for (size_t i = UVPOOL__SLAB_SLOTS; i-- > 0;) {
    slots[i].pool = pool;
    atomic_init(&slots[i].state, 0); /* fork_child scans every slot */
    slots[i].next = pool->free_local;
    pool->free_local = &slots[i];
  }
  return true;
}

/* Under mu: a free future from the local list, else the free stack, else
 * (if grow) a new slab; NULL if none. Counting it in live is the
 * caller's. */
static uvpool_future_t *take_free_locked(uvpool_t *pool, bool grow) {
  uvpool_future_t *f = pool->free_local;
  if (f == NULL)
    f = atomic_exchange_explicit(&pool->free_stack, NULL, memory_order_acquire);
  if (f == NULL) {
    if (!grow || !slab_grow(pool))
      return NULL;
    f = pool->free_local;
  }
  pool->free_local = f->next;
  return f;
}

/* Under mu. The returned future has refs == 0 and must be initialised. */
uvpool_future_t *uvpool__future_alloc(uvpool_t *pool) {
  uvpool_future_t *f;
  /* The runner's own cache: its futures still count in live. */
  if (uvpool__owner_held(pool) && pool->free_loop != NULL) {
    f = pool->free_loop;
    pool->free_loop = f->next;
    return f;
  }
  f = take_free_locked(pool, true);
  if (f != NULL)
    atomic_fetch_add_explicit(&pool->live, 1, memory_order_relaxed);
  return f;
}

/* Under mu: gives back a future from uvpool__future_alloc that was never
 * initialised (a batch submit that could not have all it needed). */
void uvpool__future_unalloc(uvpool_t *pool, uvpool_future_t *f) {
  if (uvpool__owner_held(pool)) { /* the runner's list counts in live */
    f->next = pool->free_loop;
    pool->free_loop = f;
    return;
  }
  f->next = pool->free_local;
  pool->free_local = f;
  atomic_fetch_sub_explicit(&pool->live, 1, memory_order_relaxed);
}

/* Under mu and the owner lock: moves a batch of free futures (at least
 * `want`) to the runner's private list, so that lock-free submits take mu
 * once per batch; new slabs only if nothing else is free. Returns false if
 * none could be had (out of memory). */
bool uvpool__free_loop_refill_locked(uvpool_t *pool, size_t want) {
  size_t n = 0, batch = want > 256 ? want : 256;
  uvpool_future_t *f;
  while (n < batch &&
         (f = take_free_locked(pool, n < want || n == 0)) != NULL) {
    f->next = pool->free_loop;
    pool->free_loop = f;
    n++;
  }
  if (n != 0)
    atomic_fetch_add_explicit(&pool->live, n, memory_order_relaxed);
  return n != 0;
}

/* Under the owner lock, once the pool finished: the private list gives
 * back the counts its futures held. */
void uvpool__free_loop_release(uvpool_t *pool) {
  unsigned long n = 0;
  for (uvpool_future_t *f = pool->free_loop; f != NULL; f = f->next)
    n++;
  pool->free_loop = NULL;
  if (n != 0)
    atomic_fetch_sub_explicit(&pool->live, n, memory_order_relaxed);
}

void uvpool__slabs_free(uvpool_t *pool) {
  uvpool__slab_t *slab = pool->slabs;
  while (slab != NULL) {
    uvpool__slab_t *next = slab->next;
    uvpool__free(slab->slots);
    uvpool__free(slab);
    slab = next;
  }
  pool->slabs = NULL;
}

/* Lock-free push: any thread may drop the last reference. Only the
 * allocator takes from the stack, all at once, so there is no ABA. */
static void future_free(uvpool_future_t *f) {
  uvpool_t *pool = uvpool__future_pool(f);
  uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
  /* uvpool_when_any's result is an input it keeps referenced. */
  if (s & UVPOOL__F_RESULT_FUTURE)
    uvpool_future_unref(f->u.result);
  /* The runner frees most futures (after delivery) and allocates most
   * (submits from callbacks): a private list saves it every atomic but the
   * owner lock's, which a delivery already holds. Futures on it keep their
   * count in live until the pool finishes. */
  if (uvpool__owner_enter(pool)) {
    bool keep = !uvpool__closed(pool);
    if (keep) {
      f->next = pool->free_loop;
      pool->free_loop = f;
    }
    uvpool__owner_leave(pool);
    if (keep)
      return;
  }
  (void)uvpool__stack_push(&pool->free_stack, f);
  uvpool__pool_release(pool);
}

/* A free future has no reference: taking or dropping one then is a
 * double release (or use after release). Caught while the slot is free;
 * once reused, the call hits another future, as with any allocator. The
 * check is one compare on a value the atomic returns anyway. */
uvpool_future_t *uvpool_future_ref(uvpool_future_t *f) {
  if (f != NULL &&
      atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed) == 0)
    uvpool__misuse("uvpool_future_ref", "future already released");
  return f;
}

void uvpool_future_unref(uvpool_future_t *f) {
  uint32_t old;
  if (f == NULL)
    return;
  old = atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
  if (old == 1)
    future_free(f);
  else if (old == 0)
    uvpool__misuse("uvpool_future_unref",
                   "future released more often than referenced");
}

/* ---- the callback lock ------------------------------------------------ */

/* Takes F_LOCK. With claim, the same step also takes the inline callback
 * slot (F_HAS_CB) if it is free: registering then costs two atomics, not
 * three. Returns the state as it was, plus F_LOCK: F_HAS_CB in it says
 * whether the slot was already taken. */
static uint32_t flock(uvpool_future_t *f, bool claim) {
  unsigned spins = 0;
  uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
  for (;;) {
    uint32_t add = claim ? UVPOOL__F_LOCK | UVPOOL__F_HAS_CB : UVPOOL__F_LOCK;
    if ((s & UVPOOL__F_LOCK) == 0 &&
        atomic_compare_exchange_weak_explicit(
            &f->state, &s, s | add, memory_order_acquire, memory_order_relaxed))
      return s | UVPOOL__F_LOCK;
    if (++spins % 64 == 0)
      sched_yield();
    s = atomic_load_explicit(&f->state, memory_order_relaxed);
  }
}

static void funlock(uvpool_future_t *f, uint32_t clear) {
  atomic_fetch_and_explicit(&f->state, ~(UVPOOL__F_LOCK | clear),
                            memory_order_release);
}

/* ---- settlement -------------------------------------------------------- */

/* Settling records the outcome, wakes waiters and queues delivery. The
 * pool's reference travels with the future onto the done list. Workers
 * settle without mu the task they ran (nobody else may settle a running
 * task); everyone else holds mu. */
static uint32_t settled_state(uint32_t old, uvpool_state_t st) {
  return (old & ~(UVPOOL__STATE_MASK | UVPOOL__F_WAITERS | UVPOOL__F_WATCHED)) |
         (uint32_t)st | UVPOOL__F_ON_DONE_LIST;
}

static void watchers_take(uvpool_future_t *f);

/* Records the outcome and wakes waiters; returns the state before. Alone
 * with f (see uvpool__pool_ref_only), nothing can set a waiter or lock bit
 * meanwhile: a store instead of a compare-and-swap, and no waiter to
 * wake. */
static uint32_t record(uvpool_future_t *f, uvpool_state_t st, int status,
                       void *result, bool alone) {
  uint32_t old = atomic_load_explicit(&f->state, memory_order_relaxed);
  f->u.result = st == UVPOOL_DONE ? result : NULL;
  f->status = status;
  if (alone) {
    atomic_store_explicit(&f->state, settled_state(old, st),
                          memory_order_release);
  } else {
    while (!atomic_compare_exchange_weak_explicit(
        &f->state, &old, settled_state(old, st), memory_order_release,
        memory_order_relaxed))
      ;
    if (old & UVPOOL__F_WAITERS)
      uvpool__futex_wake_all(&f->state);
    if (old & UVPOOL__F_WATCHED)
      watchers_take(f);
  }
  return old;
}

void uvpool__settle(uvpool_t *pool, uvpool_future_t *f, uvpool_state_t st,
                    int status, void *result) {
  (void)record(f, st, status, result, false);
  uvpool__done_push(pool, f);
}

bool uvpool__settle_ran(uvpool_t *pool, uvpool_future_t *f, uvpool_state_t st,
                        int status, void *result) {
  bool alone = uvpool__pool_ref_only(f);
  uint32_t old = record(f, st, status, result, alone);
  /* Alone and without callbacks, f stays so: no thread can reach it to
   * add one. Its delivery only recycles it. */
  if (alone && (old & (UVPOOL__F_HAS_CB | UVPOOL__F_CB_LIST)) == 0)
    return true;
  uvpool__done_push(pool, f);
  return false;
}

/* Under mu: one more task settled in st, for uvpool_stats. */
void uvpool__count_settled_locked(uvpool_t *pool, uvpool_state_t st) {
  if (st == UVPOOL_DONE)
    pool->completed++;
  else if (st == UVPOOL_CANCELLED)
    pool->cancelled++;
  else
    pool->failed++;
}

/* Under mu: settles a task (not a combination) and counts it. */
void uvpool__settle_task_locked(uvpool_t *pool, uvpool_future_t *f,
                                uvpool_state_t st, int status, void *result) {
  uvpool__count_settled_locked(pool, st);
  uvpool__settle(pool, f, st, status, result);
}

/* Loop thread. Runs f's callbacks in registration order, with no lock
 * held, then drops the done list's reference. Callbacks registered while
 * these run are requeued by uvpool_future_on_done. */
void uvpool__future_deliver(uvpool_t *pool, uvpool_future_t *f) {
  uvpool__cbnode_t *tail = NULL, *n;
  uvpool_done_cb cb;
  void *data;
  bool alone = uvpool__pool_ref_only(f);
  uint32_t clear =
      UVPOOL__F_ON_DONE_LIST | UVPOOL__F_HAS_CB | UVPOOL__F_CB_LIST;
  uint32_t s = alone ? atomic_load_explicit(&f->state, memory_order_relaxed)
                     : flock(f, false);
  cb = f->cb;
  data = f->cb_data;
  if (s & UVPOOL__F_CB_LIST) {
    tail = data;
    cb = NULL;
  }
  f->cb = NULL;
  f->cb_data = NULL;
  /* Cleared before the callbacks run: one that registers another on f
   * must see f delivered, so that it is queued again. */
  if (alone)
    atomic_store_explicit(
        &f->state,
        atomic_load_explicit(&f->state, memory_order_relaxed) & ~clear,
        memory_order_relaxed);
  else
    funlock(f, clear);
  /* Not deliverable only while another thread runs the exit handler, which
   * the exit tests provoke in child processes (see exit.c on coverage). */
  if (cb != NULL && uvpool__may_deliver(pool))
    cb(f, data);
  n = tail != NULL ? tail->next : NULL;
  while (n != NULL) {
    uvpool__cbnode_t *next = n == tail ? NULL : n->next;
    if (uvpool__may_deliver(pool))
      n->cb(f, n->data);
    uvpool__free(n);
    n = next;
  }
  /* Still alone after the callbacks (they may have passed f on): free it
   * without the atomic decrement. */
  if (uvpool__pool_ref_only(f))
    future_free(f);
  else
    uvpool_future_unref(f);
}

/* ---- callbacks ---------------------------------------------------------- */

/* Nodes allocated before taking F_LOCK, for a registration that finds
 * the inline slot taken. */
typedef struct {
  uvpool__cbnode_t *n[2];
  unsigned have;
} spare_t;

/* Nodes a registration needs in state s: none while the inline slot is
 * free, two to move the inline callback into a list beside the new one,
 * one to append to the list. */
static unsigned nodes_needed(uint32_t s) {
  if ((s & UVPOOL__F_HAS_CB) == 0)
    return 0;
  return (s & UVPOOL__F_CB_LIST) ? 1 : 2;
}

static bool spare_fill(spare_t *sp, unsigned need) {
  while (sp->have < need) {
    uvpool__cbnode_t *n = uvpool__malloc(sizeof(*n));
    if (n == NULL)
      return false;
    sp->n[sp->have++] = n;
  }
  return true;
}

static void spare_free(spare_t *sp) {
  while (sp->have > 0)
    uvpool__free(sp->n[--sp->have]);
}

static uvpool__cbnode_t *node_new(spare_t *sp, uvpool_done_cb cb, void *data) {
  uvpool__cbnode_t *n = sp->n[--sp->have];
  n->cb = cb;
  n->data = data;
  n->watched = NULL;
  return n;
}

/* Under F_LOCK taken with claim, which returned locked_state; sp holds
 * nodes_needed(locked_state) nodes or more. */
static void cb_append(uvpool_future_t *f, uint32_t locked_state, spare_t *sp,
                      uvpool_done_cb cb, void *data) {
  uvpool__cbnode_t *node, *first;
  if ((locked_state & UVPOOL__F_HAS_CB) == 0) {
    f->cb = cb;
    f->cb_data = data;
    return;
  }
  assert(sp->have >= nodes_needed(locked_state));
  node = node_new(sp, cb, data);
  if (locked_state & UVPOOL__F_CB_LIST) {
    uvpool__cbnode_t *tail = f->cb_data;
    node->next = tail->next;
    tail->next = node;
    f->cb_data = node;
    return;
  }
  first = node_new(sp, f->cb, f->cb_data);
  first->next = node;
  node->next = first;
  /* The fields before the flag: a fork() child, which clears every lock,
   * then sees either the inline callback, no callback, or the list. */
  f->cb = NULL;
  f->cb_data = node;
  atomic_fetch_or_explicit(&f->state, UVPOOL__F_CB_LIST, memory_order_release);
}

/* The slow path: f settled and its earlier callbacks were delivered, so f
 * must go back on the done list, under mu, unless the pool finished. */
static int on_done_requeue(uvpool_t *pool, uvpool_future_t *f, spare_t *sp,
                           uvpool_done_cb cb, void *data) {
  uint32_t s;
  uv_mutex_lock(&pool->g->mu);
  if (uvpool__closed(pool) || uvpool__exiting(pool)) {
    uv_mutex_unlock(&pool->g->mu);
    spare_free(sp);
    return UV_ESHUTDOWN;
  }
  /* Delivered, f usually has its inline slot free: nodes are allocated
   * (under mu, not under F_LOCK) only for what the locked state needs. */
  for (;;) {
    s = flock(f, true);
    if (nodes_needed(s) <= sp->have)
      break;
    funlock(f, 0); /* the claim took nothing: the slot was taken */
    if (!spare_fill(sp, nodes_needed(s))) {
      uv_mutex_unlock(&pool->g->mu);
      spare_free(sp);
      return UV_ENOMEM;
    }
  }
  cb_append(f, s, sp, cb, data);
  /* Already queued again only if another thread requeued f between our
   * look at it and this lock: a race the stress test may or may not hit. */
  if ((s & UVPOOL__F_ON_DONE_LIST) == 0) {
    atomic_fetch_or_explicit(&f->state, UVPOOL__F_ON_DONE_LIST,
                             memory_order_relaxed);
    uvpool_future_ref(f);
    pool->outstanding++;
    uvpool__keepalive_locked(pool);
    uvpool__done_push(pool, f);
  }
  funlock(f, 0);
  uv_mutex_unlock(&pool->g->mu);
  spare_free(sp); /* what a racing registration left unneeded */
  return 0;
}

int uvpool_future_on_done(uvpool_future_t *f, uvpool_done_cb cb, void *data) {
  uvpool_t *pool;
  spare_t sp = {{NULL, NULL}, 0};
  uint32_t s;
  if (f == NULL || cb == NULL)
    return UV_EINVAL;
  if (atomic_load_explicit(&f->refs, memory_order_relaxed) == 0)
    uvpool__misuse("uvpool_future_on_done", "future already released");
  pool = uvpool__future_pool(f);
  if (uvpool__exiting(pool))
    return UV_ESHUTDOWN;
  for (;;) {
    s = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (!spare_fill(&sp, nodes_needed(s))) {
      spare_free(&sp);
      return UV_ENOMEM;
    }
    s = flock(f, true);
    /* Short only if another thread registered between the two looks. */
    if (nodes_needed(s) > sp.have) {
      funlock(f, 0); /* the slot was taken meanwhile: allocate, retry */
      continue;
    }
    break;
  }
  /* Unsettled, or settled but not yet delivered: delivery will see it. */
  if (!uvpool__settled(s) || (s & UVPOOL__F_ON_DONE_LIST)) {
    cb_append(f, s, &sp, cb, data);
    funlock(f, 0);
    spare_free(&sp); /* the common case allocated nothing */
    return 0;
  }
  /* Give back the slot claimed in vain: the requeue claims it anew. As the
   * loop's thread, the requeue also makes the loop wait for it. */
  funlock(f, (s & UVPOOL__F_HAS_CB) ? 0 : UVPOOL__F_HAS_CB);
  bool owner = uvpool__owner_enter(pool);
  int rc = on_done_requeue(pool, f, &sp, cb, data);
  if (owner)
    uvpool__owner_leave(pool);
  return rc;
}

/* ---- watchers ------------------------------------------------------------ */

/* Watchers waiting for this thread to release its locks. */
static _Thread_local uvpool__cbnode_t *tls_watch, *tls_watch_last;

/* Settling f, which had F_WATCHED: moves its watcher nodes to this
 * thread's waiting list, keeping the done callbacks in order. */
static void watchers_take(uvpool_future_t *f) {
  (void)flock(f, false);
  uvpool__cbnode_t *tail = f->cb_data, *kept = NULL, *kept_last = NULL;
  uvpool__cbnode_t *n = tail->next;
  uint32_t clear = 0;
  for (;;) {
    uvpool__cbnode_t *next = n->next;
    bool last = n == tail;
    if (n->watched != NULL) {
      n->next = NULL;
      if (tls_watch_last != NULL)
        tls_watch_last->next = n;
      else
        tls_watch = n;
      tls_watch_last = n;
    } else {
      if (kept == NULL)
        kept = n;
      else
        kept_last->next = n;
      kept_last = n;
    }
    if (last)
      break;
    n = next;
  }
  if (kept != NULL) {
    kept_last->next = kept; /* circular again, tail last */
    f->cb_data = kept_last;
  } else {
    f->cb_data = NULL;
    clear = UVPOOL__F_CB_LIST | UVPOOL__F_HAS_CB;
  }
  funlock(f, clear);
}

void uvpool__watchers_run(void) {
  while (tls_watch != NULL) {
    uvpool__cbnode_t *n = tls_watch;
    tls_watch = n->next;
    if (tls_watch == NULL)
      tls_watch_last = NULL;
    n->cb(n->watched, n->data); /* may settle more: they queue behind */
    uvpool__free(n);
  }
}

/* Nodes a watcher needs in state s: its own, plus one for an inline done
 * callback that moves into the list with it. */
static unsigned watch_nodes_needed(uint32_t s) {
  return (s & UVPOOL__F_HAS_CB) && !(s & UVPOOL__F_CB_LIST) ? 2 : 1;
}

/* Under F_LOCK, which returned s: appends node to f's list. */
static void watch_append(uvpool_future_t *f, uint32_t s, spare_t *sp,
                         uvpool__cbnode_t *node) {
  uint32_t set = UVPOOL__F_CB_LIST | UVPOOL__F_HAS_CB;
  if (s & UVPOOL__F_CB_LIST) {
    uvpool__cbnode_t *tail = f->cb_data;
    node->next = tail->next;
    tail->next = node;
  } else if (s & UVPOOL__F_HAS_CB) {
    uvpool__cbnode_t *first = node_new(sp, f->cb, f->cb_data);
    first->next = node;
    node->next = first;
  } else {
    node->next = node;
  }
  /* The fields before the flags: see cb_append. */
  f->cb = NULL;
  f->cb_data = node;
  atomic_fetch_or_explicit(&f->state, set, memory_order_release);
}

int uvpool__future_watch(uvpool_future_t *f, uvpool_done_cb fn, void *data) {
  spare_t sp = {{NULL, NULL}, 0};
  uint32_t s, cur;
  for (;;) {
    s = atomic_load_explicit(&f->state, memory_order_acquire);
    if (uvpool__settled(s))
      break;
    if (!spare_fill(&sp, watch_nodes_needed(s))) {
      spare_free(&sp);
      return UV_ENOMEM;
    }
    s = flock(f, false);
    if (uvpool__settled(s) || watch_nodes_needed(s) > sp.have) {
      funlock(f, 0);
      continue;
    }
    /* Announce the watcher while f is unsettled: a settler that comes
     * later then takes it (waiting for F_LOCK); one that came first makes
     * this fail, and f is settled. */
    cur = s;
    while (!uvpool__settled(cur) &&
           !atomic_compare_exchange_weak_explicit(
               &f->state, &cur, cur | UVPOOL__F_WATCHED, memory_order_acq_rel,
               memory_order_acquire))
      ;
    if (uvpool__settled(cur)) {
      funlock(f, 0);
      break;
    }
    /* s, not cur, for the list bits: only holders of F_LOCK change them. */
    uvpool__cbnode_t *node = node_new(&sp, fn, data);
    node->watched = f;
    watch_append(f, s, &sp, node);
    funlock(f, 0);
    spare_free(&sp);
    return 0;
  }
  spare_free(&sp);
  return 1;
}

/* ---- queries ------------------------------------------------------------ */

uvpool_state_t uvpool_future_state(const uvpool_future_t *f) {
  uint32_t s;
  if (f == NULL)
    return UVPOOL_FAILED;
  s = atomic_load_explicit(&((uvpool_future_t *)f)->state,
                           memory_order_acquire);
  return (uvpool_state_t)(s & UVPOOL__STATE_MASK);
}

int uvpool_future_status(const uvpool_future_t *f) {
  if (f == NULL)
    return UV_EINVAL;
  if (!uvpool__settled((uint32_t)uvpool_future_state(f)))
    return UV_EBUSY;
  return f->status;
}

/* A task with options keeps its argument in its options until it leaves
 * the queue; the one that takes it off writes arg under mu, then clears
 * F_EXT with release. So with the flag clear arg is final; with it set,
 * mu decides. */
void *uvpool_future_arg(const uvpool_future_t *f) {
  uvpool_t *pool;
  void *arg;
  if (f == NULL)
    return NULL;
  if ((atomic_load_explicit(&f->state, memory_order_acquire) & UVPOOL__F_EXT) ==
      0)
    return f->arg;
  pool = uvpool__future_pool(f);
  uv_mutex_lock(&pool->g->mu);
  {
    const uvpool__ext_t *e = uvpool__ext_of(f);
    arg = e != NULL ? e->arg : f->arg;
  }
  uv_mutex_unlock(&pool->g->mu);
  return arg;
}

void *uvpool_future_result(const uvpool_future_t *f) {
  if (f == NULL || uvpool_future_state(f) != UVPOOL_DONE)
    return NULL;
  return f->u.result;
}

int uvpool_future_wait(uvpool_future_t *f, int64_t timeout_ms) {
  uint64_t deadline = 0;
  if (f == NULL)
    return UV_EINVAL;
  timeout_ms = uvpool__ms_or_none(timeout_ms);
  if (timeout_ms >= 0)
    deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
  for (;;) {
    uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
    int64_t left = -1;
    if (uvpool__settled(s))
      return 0;
    if (timeout_ms >= 0) {
      uint64_t now = uv_hrtime();
      if (now >= deadline)
        return UV_ETIMEDOUT;
      left = (int64_t)(deadline - now);
    }
    if ((s & UVPOOL__F_WAITERS) == 0 &&
        !atomic_compare_exchange_weak_explicit(
            &f->state, &s, s | UVPOOL__F_WAITERS, memory_order_acquire,
            memory_order_relaxed))
      continue;
    uvpool__futex_wait(&f->state, s | UVPOOL__F_WAITERS, left);
  }
}

/* ---- cancellation ------------------------------------------------------- */

int uvpool_future_cancel(uvpool_future_t *f) {
  uvpool_t *pool;
  uint32_t s;
  int rc = UV_EBUSY;
  if (f == NULL)
    return UV_EINVAL;
  s = atomic_load_explicit(&f->state, memory_order_acquire);
  if (uvpool__settled(s))
    return UV_EBUSY;
  pool = uvpool__future_pool(f);
  uv_mutex_lock(&pool->g->mu);
  s = atomic_load_explicit(&f->state, memory_order_relaxed);
  switch (s & UVPOOL__STATE_MASK) {
  case UVPOOL_PENDING:
    if (s & UVPOOL__F_COMBINED) {
      /* Only the combination settles; its inputs go on. */
      uvpool__settle(pool, f, UVPOOL_CANCELLED, UV_ECANCELED, NULL);
    } else if (s & UVPOOL__F_HELD) {
      /* Its dependencies go on; when they settle they find it settled. */
      uvpool__held_remove_locked(pool, f);
      uvpool__settle_task_locked(pool, f, UVPOOL_CANCELLED, UV_ECANCELED, NULL);
    } else {
      uvpool__pend_cancel(pool->g, f, UV_ECANCELED);
    }
    rc = 0;
    break;
  case UVPOOL_RUNNING:
    atomic_fetch_or_explicit(&f->state, UVPOOL__F_CANCEL_REQ,
                             memory_order_relaxed);
    break;
  default:
    break;
  }
  uv_mutex_unlock(&pool->g->mu);
  uvpool__watchers_run();
  return rc;
}
