/*
 * limits.h - what a container may use: the limits file.
 *
 * The node agent (or `vgpool run`) writes one limits file per container,
 * once, before the container starts; inside the container it is read-only.
 * libvgpool.so reads it to learn, per device (by UUID), the memory quota,
 * the compute share and its policy, and for the container its priority and
 * whether memory may be oversubscribed. Devices are named by UUID so the
 * same file is right whatever order or subset CUDA_VISIBLE_DEVICES shows.
 *
 * The file is text, so people can read it, with a version line first and a
 * CRC-32 checksum line last, so a truncated, corrupt or foreign-version file
 * is detected and refused rather than misread:
 *
 *   vgpool-limits 1
 *   container train-7f3a
 *   priority 1
 *   oversubscribe no
 *   device GPU-6f1e2a4b-0c3d-4e5f-8a9b-0123456789ab memory=4294967296 cores=30 policy=hard
 *   checksum 8d1c2a4f
 *
 * memory is bytes (0 = no memory limit); cores is the compute share in
 * percent (1..100; 100 = no compute limit); policy is hard (never above the
 * share) or elastic (may use idle time). Lower priority numbers win.
 */
#ifndef VGPOOL_LIMITS_H
#define VGPOOL_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VGP_LIMITS_VERSION 1
#define VGP_MAX_DEVICES 16
#define VGP_UUID_MAX 48
#define VGP_CONTAINER_ID_MAX 64

enum vgp_policy {
  VGP_POLICY_HARD = 0,
  VGP_POLICY_ELASTIC = 1,
};

struct vgp_device_limit {
  char uuid[VGP_UUID_MAX];
  uint64_t memory;       /* bytes; 0 = unlimited */
  unsigned cores;        /* percent of the device's time, 1..100 */
  int policy;            /* enum vgp_policy */
};

struct vgp_limits {
  char container[VGP_CONTAINER_ID_MAX];
  int priority;          /* lower wins; HAMi's 0 = high, 1 = low */
  int oversubscribe;     /* 1: serve allocations from host memory when full */
  unsigned ndevices;
  struct vgp_device_limit dev[VGP_MAX_DEVICES];
};

/* Parses the text of a limits file. On error returns a negative errno and
 * writes into err a message naming the line and what is wrong: -EPROTO for
 * a file that is not a limits file, -EPROTONOSUPPORT for another version,
 * -EBADMSG for a truncated or corrupt one (checksum), -EINVAL for a bad
 * line. ret is untouched on failure. */
int vgp_limits_parse(const char *text, size_t len, struct vgp_limits *ret,
                     char *err, size_t errlen);

/* Reads and parses a limits file (at most 64 KiB). -ENOENT if missing. */
int vgp_limits_load(const char *path, struct vgp_limits *ret, char *err,
                    size_t errlen);

/* Writes l as text with its checksum into buf. Returns the length or
 * -ENOSPC. */
int vgp_limits_format(const struct vgp_limits *l, char *buf, size_t len);

/* Writes the file atomically (temporary file, then rename), read-only. */
int vgp_limits_save(const char *path, const struct vgp_limits *l);

/* The entry for a device UUID, or NULL. */
const struct vgp_device_limit *vgp_limits_find(const struct vgp_limits *l,
                                               const char *uuid);

#ifdef __cplusplus
}
#endif

#endif
