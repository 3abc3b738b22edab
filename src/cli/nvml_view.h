/*
 * nvml_view.h - the GPUs of this node as NVML reports them, for the CLI.
 *
 * `vgpool run` needs the devices' UUIDs and memory sizes to write a limits
 * file, and `vgpool top` shows each device's name, memory and utilization.
 * Both read them here. NVML is loaded at run time with
 * dlopen("libnvidia-ml.so.1") — the vgpool binary neither links against
 * NVIDIA's library nor needs its headers (abi/vgpool_nvml.h declares what
 * we call) — so the CLI builds and runs on machines without a driver, and
 * picks up the simulated node when LD_LIBRARY_PATH selects it.
 *
 * A snapshot copies what it reads into plain structs, so callers never hold
 * NVML handles and never depend on NVML staying initialized.
 */
#ifndef VGP_CLI_NVML_VIEW_H
#define VGP_CLI_NVML_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "vgpool/limits.h"

/* The most devices one snapshot holds. Nodes have at most a few dozen GPUs
 * (or MIG instances); anything past this is reported as an error rather
 * than silently dropped. */
#define VGP_NVML_VIEW_MAX 64
#define VGP_NVML_NAME_MAX 96
#define VGP_NVML_ERR_MAX 512

struct vgp_nvml_device {
  unsigned index;              /* NVML's index, as nvidia-smi numbers it */
  char name[VGP_NVML_NAME_MAX];
  char uuid[VGP_UUID_MAX];
  uint64_t memory_total;       /* bytes */
  uint64_t memory_used;        /* bytes */
  int have_util;               /* utilization below is valid */
  unsigned util_gpu;           /* percent over the last sample period */
  unsigned util_memory;        /* percent */
};

struct vgp_nvml_view {
  unsigned count;
  struct vgp_nvml_device dev[VGP_NVML_VIEW_MAX];
};

/* The loaded library and its entry points; opaque to callers. */
struct vgp_nvml;

/* Loads libnvidia-ml.so.1 and initializes NVML. On failure returns a
 * negative errno (-ENOENT when the library cannot be loaded, -EIO when
 * nvmlInit fails) and writes into err a message that names the library and
 * says how to select the simulated node; *ret is untouched. */
int vgp_nvml_open(struct vgp_nvml **ret, char *err, size_t errlen);

/* Reads every device into *ret (allocation-free; the caller provides the
 * storage). Returns 0 or a negative errno with a message in err; *ret is
 * untouched on failure. Utilization that the driver does not report is
 * marked with have_util = 0, not treated as an error. */
int vgp_nvml_snapshot(struct vgp_nvml *n, struct vgp_nvml_view *ret, char *err,
                      size_t errlen);

/* Shuts NVML down and frees n. The library itself stays mapped: unloading
 * a driver library mid-process is not something drivers promise to
 * survive, and the CLI exits soon after. Safe with NULL. */
void vgp_nvml_close(struct vgp_nvml *n);

/* Resolves one device selector against a snapshot: a decimal NVML index
 * ("0", "3"), or a UUID given in full or as a unique prefix, with or
 * without its "GPU-"/"MIG-" prefix ("GPU-6eeaf423", "6eeaf423"). A token of
 * digits only is always an index. Returns the position in v->dev, or
 * -ENOENT (no such device) / -EEXIST (ambiguous prefix) / -EINVAL (empty)
 * with a message naming the selector in err. */
int vgp_nvml_find(const struct vgp_nvml_view *v, const char *selector, char *err,
                  size_t errlen);

/* The position of the device with exactly this UUID, or -1. */
int vgp_nvml_find_uuid(const struct vgp_nvml_view *v, const char *uuid);

#endif
