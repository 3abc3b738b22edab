/*
 * config.h - which devices a simulated node has.
 *
 * Two ways to describe a node:
 *
 *   VGPOOL_SIM_DEVICES="2xH100-80GB,1xT4"   a spec: comma-separated items
 *                                           "[N x]MODEL", MODEL a preset
 *   VGPOOL_SIM_CONFIG=/path/node.conf       a file, one [device] section per
 *                                           device, keys below
 *
 * A config file looks like:
 *
 *   # comments start with '#'
 *   [device]
 *   model = H100-80GB          # preset to start from (required)
 *   name = NVIDIA H100 80GB HBM3
 *   uuid = GPU-6f1e2a4b-0c3d-4e5f-8a9b-0123456789ab
 *   pci_bus_id = 00000000:17:00.0
 *   numa_node = 0
 *   memory = 40GiB
 *   context_memory = 64MiB     # device memory each context takes
 *   sms = 66
 *   nvlink = 1:18,2:18         # peer device index : number of links
 *
 * Presets carry each model's real memory size, SM count, compute capability
 * and clocks. Unset fields get defaults: UUIDs derived deterministically from
 * VGPOOL_SIM_NODE_ID (default "vgpool-sim") and the device index, PCI bus ids
 * in slot order, NUMA nodes split in halves on nodes with four or more
 * devices, and all-to-all NVLink among SXM devices of the same model (an
 * NVSwitch board). Any error names the bad token and its position.
 */
#ifndef VGP_SIM_CONFIG_H
#define VGP_SIM_CONFIG_H

#include <stddef.h>

#include "node.h"

struct vgp_sim_preset {
  const char *model;
  const char *name;
  unsigned sm_count;
  unsigned cc_major, cc_minor;
  unsigned long long memory_mib;
  unsigned clock_mhz, mem_clock_mhz, mem_bus_width;
  unsigned l2_kib;
  unsigned max_threads_per_sm, max_blocks_per_sm;
  unsigned shared_kib_per_sm;
  unsigned power_limit_w;
  unsigned pci_device;          /* PCI device id */
  unsigned nvlink_links;        /* links per peer on an SXM board, 0 = PCIe */
  unsigned long long bandwidth_gbps; /* memory bandwidth in GB/s */
  unsigned context_mib;         /* per-context footprint the driver takes */
};

/* The preset table, terminated by an entry with model == NULL. */
extern const struct vgp_sim_preset vgp_sim_presets[];

/* Looks up a preset by model name (case-insensitive). */
const struct vgp_sim_preset *vgp_sim_preset_find(const char *model);

/* Fills cfg[] from a spec string. Returns the device count (>= 1) or a
 * negative errno with a message naming the bad token in err. */
int vgp_sim_parse_spec(const char *spec, struct vgp_sim_device_config *cfg,
                       int max, char *err, size_t errlen);

/* Fills cfg[] from a config file. Same contract. */
int vgp_sim_parse_config_file(const char *path,
                              struct vgp_sim_device_config *cfg, int max,
                              char *err, size_t errlen);

/* Fills cfg[] from the environment (VGPOOL_SIM_CONFIG, then
 * VGPOOL_SIM_DEVICES, then the default "1xH100-80GB") and writes the source
 * description (spec text or "config:<path>") into source. */
int vgp_sim_config_from_env(struct vgp_sim_device_config *cfg, int max,
                            char *source, size_t source_len, char *err,
                            size_t errlen);

#endif
