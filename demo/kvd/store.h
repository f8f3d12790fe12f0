/* kvd: persistence in SQLite.
 *
 * One table, kv(k BLOB PRIMARY KEY, v BLOB, exp INTEGER): exp is the
 * absolute expiry in wall-clock milliseconds, NULL for none. Expired rows
 * are invisible to every read and are deleted lazily (store_purge).
 *
 * Each thread that touches the database owns one connection, reached
 * through store_current(): pool workers open theirs in thread_init, and the
 * loop thread opens one only in --inline mode; in pool mode the loop thread
 * makes no SQLite call at all. Connections are never shared, so they are
 * opened without SQLite's own mutexes. Opening a connection also creates
 * the file, switches it to WAL mode and creates the schema if needed.
 *
 * Every function returning int returns a negative value on a SQLite error;
 * store_errmsg() then describes it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef KVD_STORE_H
#define KVD_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;

typedef enum { STORE_SYNC_NORMAL, STORE_SYNC_FULL } store_sync_t;

/* Records the configuration. Loop thread, once, before any other call;
 * makes no SQLite call (the connections create the file and schema).
 * Returns 0, or -1 if a mutex cannot be created. */
int store_configure(const char *path, store_sync_t sync);
/* Undoes store_configure() once every connection is closed. */
void store_teardown(void);

/* uvpool thread_init / thread_exit: open (close) the calling thread's
 * connection. thread_init returns UV_EIO if the database cannot be opened,
 * which breaks the pool: later requests then fail cleanly. */
int store_thread_init(void *unused);
void store_thread_exit(void *unused);

/* The calling thread's connection, NULL if it has none. */
store_t *store_current(void);
const char *store_errmsg(store_t *s);

/* Transactions. A write transaction is BEGIN IMMEDIATE under a
 * process-wide mutex: SQLite allows one writer at a time, and queueing on a
 * mutex is far cheaper than SQLite's sleep-and-retry busy handler. A read
 * transaction is a plain BEGIN: a consistent snapshot, concurrent with the
 * writer thanks to WAL. */
int store_begin(store_t *s, int write);
/* On failure the transaction is still open: read store_errmsg(), then call
 * store_rollback(). */
int store_commit(store_t *s);
/* Ends the transaction, whatever state it is in. */
void store_rollback(store_t *s);

/* Looks key up. Returns 1 and fills *v, *vl (if v is not NULL) and *exp
 * (0: no expiry) if the key exists and has not expired at now, 0 if not.
 * *v stays valid until the next call on s. */
int store_get(store_t *s, const void *k, size_t kl, int64_t now, const void **v,
              size_t *vl, int64_t *exp);
/* Creates or replaces key with value and expiry (0: none). */
int store_put(store_t *s, const void *k, size_t kl, const void *v, size_t vl,
              int64_t exp);
/* Deletes key; returns 1 if a live key was deleted, else 0. */
int store_del(store_t *s, const void *k, size_t kl, int64_t now);
/* Sets the expiry of an existing key (0: none). */
int store_set_expire(store_t *s, const void *k, size_t kl, int64_t exp);
/* Number of live keys. */
int store_count(store_t *s, int64_t now, long long *n);
/* Calls cb for each live key matching a Redis glob pattern. */
int store_keys(store_t *s, const void *pat, size_t plen, int64_t now,
               void (*cb)(void *arg, const void *k, size_t kl), void *arg);
/* Deletes every key. */
int store_flush(store_t *s);
/* Deletes expired rows, at most about once per second process-wide; call
 * inside a write transaction. */
int store_purge(store_t *s, int64_t now);

#endif /* KVD_STORE_H */
