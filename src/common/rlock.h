/*
 * rlock.h - process-shared robust mutexes for shared files.
 *
 * A mutex inside a shared file must not wedge everyone when its holder is
 * killed. These mutexes are PTHREAD_PROCESS_SHARED and PTHREAD_MUTEX_ROBUST:
 * the next locker after a dead holder gets the lock with EOWNERDEAD, marks
 * it consistent, and is told so that it can repair whatever the dead holder
 * left half-done.
 */
#ifndef VGP_COMMON_RLOCK_H
#define VGP_COMMON_RLOCK_H

#include <pthread.h>
#include <stdint.h>

/* Initializes a mutex that lives in shared memory. Returns 0 or -errno. */
int vgp__rlock_init(pthread_mutex_t *mutex);

/* Locks, waiting at most timeout_ns (0 = forever). Returns 0, 1 when the
 * previous holder died while holding it (the lock is now held and
 * consistent; the caller should repair shared state), -ETIMEDOUT, or
 * another negative errno. */
int vgp__rlock_lock(pthread_mutex_t *mutex, uint64_t timeout_ns);

void vgp__rlock_unlock(pthread_mutex_t *mutex);

#endif
