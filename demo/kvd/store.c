/* kvd: persistence in SQLite (see store.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include "store.h"

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <uv.h>

#include "glob.h"
#include "util.h"

/* How long a connection waits for a lock held by another one. */
#define BUSY_TIMEOUT_MS 10000

enum {
  ST_BEGIN_READ,
  ST_BEGIN_WRITE,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_GET,
  ST_PUT,
  ST_DEL,
  ST_SET_EXPIRE,
  ST_COUNT,
  ST_KEYS,
  ST_FLUSH,
  ST_PURGE,
  ST__COUNT
};

/* Prepared once per connection: the per-command cost is then one
 * bind/step/reset cycle. */
static const char *const sql_text[ST__COUNT] = {
    [ST_BEGIN_READ] = "BEGIN",
    [ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_GET] = "SELECT v, exp FROM kv WHERE k = ?1",
    [ST_PUT] = "INSERT OR REPLACE INTO kv(k, v, exp) VALUES (?1, ?2, ?3)",
    [ST_DEL] = "DELETE FROM kv WHERE k = ?1 AND (exp IS NULL OR exp > ?2)",
    [ST_SET_EXPIRE] = "UPDATE kv SET exp = ?2 WHERE k = ?1",
    [ST_COUNT] = "SELECT count(*) FROM kv WHERE exp IS NULL OR exp > ?1",
    [ST_KEYS] = ("SELECT k FROM kv WHERE (exp IS NULL OR exp > ?1)"
                 " AND kvd_match(?2, k)"),
    [ST_FLUSH] = "DELETE FROM kv",
    [ST_PURGE] = "DELETE FROM kv WHERE exp IS NOT NULL AND exp <= ?1",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS kv("
    " k BLOB PRIMARY KEY NOT NULL,"
    " v BLOB NOT NULL,"
    " exp INTEGER"
    ") WITHOUT ROWID;"
    /* Partial index: only keys with a TTL are indexed, so purging expired
     * keys does not scan the table and plain SETs do not pay for it. */
    "CREATE INDEX IF NOT EXISTS kv_exp ON kv(exp) WHERE exp IS NOT NULL;";

struct store {
  sqlite3 *db;
  sqlite3_stmt *st[ST__COUNT];
  int holds_write_lock;
};

static struct {
  char *path;
  store_sync_t sync;
  uv_mutex_t write_lock;
  _Atomic int64_t last_purge_ms;
} cfg;

/* The calling thread's connection (see store.h). */
static _Thread_local store_t *tls_store;

/* SQL function kvd_match(pattern, key) for KEYS: Redis glob semantics on
 * bytes, which SQLite's GLOB does not quite have. */
static void sql_match(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const void *p = sqlite3_value_blob(argv[0]);
  size_t plen = (size_t)sqlite3_value_bytes(argv[0]);
  const void *k = sqlite3_value_blob(argv[1]);
  size_t klen = (size_t)sqlite3_value_bytes(argv[1]);
  sqlite3_result_int(ctx, glob_match(p ? p : "", plen, k ? k : "", klen));
}

/* Binds a byte string as a BLOB. Values must never become TEXT or NULL:
 * sqlite3_bind_blob() binds NULL for a NULL pointer even with length 0,
 * and keys compare by memcmp only if every key is a BLOB. */
static int bind_bytes(sqlite3_stmt *st, int i, const void *p, size_t n) {
  if (n > INT32_MAX)
    return SQLITE_TOOBIG;
  return sqlite3_bind_blob(st, i, n ? p : "", (int)n, SQLITE_STATIC);
}

/* Resets a statement and drops its bindings before reuse. */
static sqlite3_stmt *stmt(store_t *s, int which) {
  sqlite3_stmt *st = s->st[which];
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return st;
}

/* Steps a statement that returns no rows and resets it. */
static int exec_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

/* Nonzero once the database is in WAL mode. The pragma answers with the
 * mode in force, which stays "memory" or "delete" where WAL is impossible. */
static int switch_to_wal(sqlite3 *db) {
  sqlite3_stmt *st = NULL;
  int ok = 0;
  if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) ==
          SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    ok = mode != NULL && sqlite3_stricmp(mode, "wal") == 0;
  }
  sqlite3_finalize(st);
  return ok;
}

static void store_close(store_t *s) {
  if (s == NULL)
    return;
  for (int i = 0; i < ST__COUNT; i++)
    sqlite3_finalize(s->st[i]);
  /* The last connection to close checkpoints the WAL into the database
   * file and removes it: the "close the database cleanly" step of a
   * graceful stop. A connection knows it is the last by getting an
   * exclusive lock, so two closing at once could each see the other and
   * both leave the WAL behind: closes are serialised. The write mutex
   * also keeps writers out while that checkpoint runs. */
  uv_mutex_lock(&cfg.write_lock);
  sqlite3_close(s->db);
  uv_mutex_unlock(&cfg.write_lock);
  free(s);
}

/* Opens a connection with kvd's settings; NULL (message in err) on error. */
static store_t *store_open(char *err, size_t errlen) {
  store_t *s = xcalloc(1, sizeof *s);
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
              SQLITE_OPEN_NOMUTEX; /* never shared between threads */
  int rc = sqlite3_open_v2(cfg.path, &s->db, flags, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "%s: %s", cfg.path,
             s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    goto fail;
  }
  /* First of all, before anything reads the schema: workers open their
   * connections at the same moment, and the first one may be rebuilding
   * the WAL index, holding the others off for a moment. The timeout also
   * covers what our write mutex does not: other processes on the file. */
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  /* Committed WAL frames are write()n before COMMIT returns, so they
   * survive the process dying. NORMAL only delays the fsync to checkpoint
   * time (an OS crash may lose the last commits); FULL fsyncs each commit. */
  char pragmas[64];
  snprintf(pragmas, sizeof pragmas, "PRAGMA synchronous=%s;",
           cfg.sync == STORE_SYNC_FULL ? "FULL" : "NORMAL");
  /* WAL (persistent, so a no-op after the first time) lets readers run
   * beside the writer. Each connection makes sure of it and of the schema
   * itself, so that no other thread has to touch SQLite first. */
  if (!switch_to_wal(s->db)) {
    snprintf(err, errlen, "%s: cannot use WAL mode: %s", cfg.path,
             sqlite3_errmsg(s->db));
    goto fail;
  }
  if (sqlite3_exec(s->db, pragmas, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_create_function(s->db, "kvd_match", 2,
                              SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                              sql_match, NULL, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s: %s", cfg.path, sqlite3_errmsg(s->db));
    goto fail;
  }
  for (int i = 0; i < ST__COUNT; i++) {
    if (sqlite3_prepare_v3(s->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT,
                           &s->st[i], NULL) != SQLITE_OK) {
      snprintf(err, errlen, "%s: %s", cfg.path, sqlite3_errmsg(s->db));
      goto fail;
    }
  }
  return s;
fail:
  store_close(s);
  return NULL;
}

int store_configure(const char *path, store_sync_t sync) {
  size_t len = strlen(path) + 1;
  cfg.path = xmalloc(len);
  memcpy(cfg.path, path, len);
  cfg.sync = sync;
  atomic_store(&cfg.last_purge_ms, 0);
  if (uv_mutex_init(&cfg.write_lock) != 0) {
    free(cfg.path);
    cfg.path = NULL;
    return -1;
  }
  return 0;
}

void store_teardown(void) {
  uv_mutex_destroy(&cfg.write_lock);
  free(cfg.path);
  cfg.path = NULL;
}

int store_thread_init(void *unused) {
  (void)unused;
  char err[256];
  tls_store = store_open(err, sizeof err);
  if (tls_store == NULL) {
    fprintf(stderr, "kvd: database: %s\n", err);
    return UV_EIO;
  }
  return 0;
}

void store_thread_exit(void *unused) {
  (void)unused;
  store_close(tls_store);
  tls_store = NULL;
}

store_t *store_current(void) { return tls_store; }

const char *store_errmsg(store_t *s) { return sqlite3_errmsg(s->db); }

int store_begin(store_t *s, int write) {
  if (write) {
    uv_mutex_lock(&cfg.write_lock);
    s->holds_write_lock = 1;
  }
  if (exec_done(stmt(s, write ? ST_BEGIN_WRITE : ST_BEGIN_READ)) != 0) {
    if (write) {
      s->holds_write_lock = 0;
      uv_mutex_unlock(&cfg.write_lock);
    }
    return -1;
  }
  return 0;
}

/* Ends the transaction's use of the write mutex. */
static void release_write_lock(store_t *s) {
  if (s->holds_write_lock) {
    s->holds_write_lock = 0;
    uv_mutex_unlock(&cfg.write_lock);
  }
}

int store_commit(store_t *s) {
  /* A read statement left un-reset (store_get keeps its row alive for the
   * caller) would keep the snapshot open past COMMIT. */
  sqlite3_reset(s->st[ST_GET]);
  if (exec_done(s->st[ST_COMMIT]) != 0)
    return -1; /* the caller reads store_errmsg(), then rolls back */
  release_write_lock(s);
  return 0;
}

void store_rollback(store_t *s) {
  sqlite3_reset(s->st[ST_GET]);
  /* After some errors SQLite already rolled back; a failing ROLLBACK is
   * then expected and harmless. */
  if (!sqlite3_get_autocommit(s->db))
    (void)exec_done(s->st[ST_ROLLBACK]);
  release_write_lock(s);
}

int store_get(store_t *s, const void *k, size_t kl, int64_t now, const void **v,
              size_t *vl, int64_t *exp) {
  sqlite3_stmt *st = stmt(s, ST_GET);
  if (bind_bytes(st, 1, k, kl) != SQLITE_OK)
    return -1;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    return -1;
  int64_t e = 0;
  if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
    e = sqlite3_column_int64(st, 1);
    if (e <= now)
      return 0; /* expired: invisible, purged later */
  }
  if (exp)
    *exp = e;
  if (v) {
    /* Left un-reset on purpose: the blob lives in the statement's row. */
    const void *p = sqlite3_column_blob(st, 0);
    *vl = (size_t)sqlite3_column_bytes(st, 0);
    *v = p ? p : "";
  }
  return 1;
}

int store_put(store_t *s, const void *k, size_t kl, const void *v, size_t vl,
              int64_t exp) {
  sqlite3_stmt *st = stmt(s, ST_PUT);
  if (bind_bytes(st, 1, k, kl) != SQLITE_OK ||
      bind_bytes(st, 2, v, vl) != SQLITE_OK)
    return -1;
  if (exp != 0 && sqlite3_bind_int64(st, 3, exp) != SQLITE_OK)
    return -1;
  return exec_done(st);
}

int store_del(store_t *s, const void *k, size_t kl, int64_t now) {
  sqlite3_stmt *st = stmt(s, ST_DEL);
  if (bind_bytes(st, 1, k, kl) != SQLITE_OK ||
      sqlite3_bind_int64(st, 2, now) != SQLITE_OK)
    return -1;
  if (exec_done(st) != 0)
    return -1;
  return sqlite3_changes(s->db) > 0;
}

int store_set_expire(store_t *s, const void *k, size_t kl, int64_t exp) {
  sqlite3_stmt *st = stmt(s, ST_SET_EXPIRE);
  if (bind_bytes(st, 1, k, kl) != SQLITE_OK)
    return -1;
  if (exp != 0 && sqlite3_bind_int64(st, 2, exp) != SQLITE_OK)
    return -1;
  return exec_done(st);
}

int store_count(store_t *s, int64_t now, long long *n) {
  sqlite3_stmt *st = stmt(s, ST_COUNT);
  if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK)
    return -1;
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_reset(st);
    return -1;
  }
  *n = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return 0;
}

int store_keys(store_t *s, const void *pat, size_t plen, int64_t now,
               void (*cb)(void *arg, const void *k, size_t kl), void *arg) {
  sqlite3_stmt *st = stmt(s, ST_KEYS);
  if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK ||
      bind_bytes(st, 2, pat, plen) != SQLITE_OK)
    return -1;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const void *k = sqlite3_column_blob(st, 0);
    size_t kl = (size_t)sqlite3_column_bytes(st, 0);
    cb(arg, k ? k : "", kl);
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

int store_flush(store_t *s) { return exec_done(stmt(s, ST_FLUSH)); }

int store_purge(store_t *s, int64_t now) {
  /* Rate-limited process-wide: lazy expiry only needs the table not to
   * grow without bound, and a purge per write batch would be wasteful. */
  int64_t last = atomic_load(&cfg.last_purge_ms);
  if (now - last < 1000 ||
      !atomic_compare_exchange_strong(&cfg.last_purge_ms, &last, now))
    return 0;
  sqlite3_stmt *st = stmt(s, ST_PURGE);
  if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK)
    return -1;
  return exec_done(st);
}
