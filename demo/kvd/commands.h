/* kvd: the command table and what each command does.
 *
 * A request becomes a job. Commands flagged CMD_LOOP (PING, ECHO, QUIT,
 * INFO, CONFIG GET) are answered on the loop thread at once: they never
 * touch the database, so they must not wait for the pool. Every other
 * command runs on whatever thread calls commands_run_batch() (a pool
 * worker, or the loop with --inline) against that thread's SQLite
 * connection.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef KVD_COMMANDS_H
#define KVD_COMMANDS_H

#include <stdint.h>

#include "proto.h"
#include "reply.h"
#include "store.h"

enum {
  CMD_LOOP = 1u << 0,  /* answered on the loop thread */
  CMD_WRITE = 1u << 1, /* needs a write transaction */
  CMD_ALONE = 1u << 2, /* runs in a batch of its own, outside transactions */
  CMD_QUIT = 1u << 3,  /* close the connection after the reply */
};

typedef struct job job_t;

typedef struct command {
  const char *name; /* lower case, as Redis spells it in errors */
  int arity;        /* Redis convention: N exact, -N at least N */
  unsigned flags;
  /* Database commands: returns 0, or -1 on a storage error after which the
   * caller replaces the reply (see commands_run_batch). */
  int (*run)(job_t *j, store_t *s, int64_t now);
  /* CMD_LOOP commands; ctx is the server, for INFO. */
  void (*run_loop)(job_t *j, void *ctx);
} command_t;

struct job {
  const command_t *cmd;
  req_t *req;
  rbuf_t reply;
};

/* Finds the command of j->req and checks its arity. Returns 0 with j->cmd
 * set, or -1 with the Redis error reply already in j->reply. */
int command_prepare(job_t *j);

/* Runs a CMD_LOOP command. Loop thread. */
void command_run_loop(job_t *j, void *ctx);

/* Runs jobs (none CMD_LOOP) in order on the calling thread's connection,
 * in one transaction so that a pipeline costs one commit, not one per
 * command. A CMD_ALONE job must be alone. If the transaction fails, every
 * reply becomes an error: nothing of the batch was stored. */
void commands_run_batch(job_t **jobs, size_t n);

#endif /* KVD_COMMANDS_H */
