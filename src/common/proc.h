/*
 * proc.h - facts about processes that survive pid reuse.
 *
 * A pid alone cannot name a process in a shared file: pids are recycled, and
 * they mean different things in different PID namespaces. vgpool names a
 * process by (pid, start time in clock ticks since boot) as read from
 * /proc/<pid>/stat, which the kernel never repeats for a reused pid.
 */
#ifndef VGP_COMMON_PROC_H
#define VGP_COMMON_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads the start time of pid (0 = this process). Returns 0, -ESRCH when the
 * process does not exist, or another negative errno. */
int vgp__proc_start_time(pid_t pid, uint64_t *ret_start);

/* Returns 1 if pid is alive and started at start_time, 0 if not. */
int vgp__proc_matches(pid_t pid, uint64_t start_time);

/* This process's pid in the outermost PID namespace visible through
 * /proc (the NSpid line's first field), which is the node's namespace when
 * /proc is the host's; falls back to getpid(). */
int32_t vgp__proc_host_pid(void);

/* Copies the short command name of pid (comm) into buf. */
int vgp__proc_comm(pid_t pid, char *buf, size_t len);

#endif
