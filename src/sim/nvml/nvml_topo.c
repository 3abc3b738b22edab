/*
 * nvml_topo.c - where simulated devices sit: CPU and memory affinity, the
 * PCIe/NUMA topology between devices, peer-to-peer status and NVLink.
 *
 * The device configuration (config.h) gives each device a NUMA node and a
 * number of NVLink links to each peer; everything here follows from those.
 *
 * NUMA and CPUs. A device's CPU affinity is the CPUs of its NUMA node. The
 * simulated node's NUMA nodes are the host's when the host has at least as
 * many; otherwise (a laptop, a CI box) the host's online CPUs are split
 * into as many contiguous, equal shares as the simulated node has NUMA
 * nodes, so affinity-aware code still sees distinct, disjoint CPU sets. A
 * device with an unknown NUMA node (-1) is affine to every online CPU.
 * nvmlDeviceGetNumaNodeId is documented for platforms where the GPU's own
 * memory is a NUMA node (coherent CPU-GPU systems); simulated devices sit
 * on PCIe, so it is not supported, and nvmlDeviceGetMemoryAffinity gives
 * the node instead.
 *
 * Topology. The configuration has no PCIe switches, so two devices on the
 * same NUMA node are NVML_TOPOLOGY_NODE apart and any others
 * NVML_TOPOLOGY_SYSTEM. Peer access works between any two distinct devices
 * (the simulated libcuda shares host memory, and its cuDeviceCanAccessPeer
 * says so); atomics need NVLink, as cuDeviceGetP2PAttribute says too.
 *
 * NVLink. A device has as many links as its model has (18 for an H100 SXM;
 * for a PCIe model given links in a config file, its largest per-peer
 * count). When its links to all peers fit (two boards joined directly, or a
 * bridge), links are numbered peer by peer in index order, each reports its
 * peer's PCI identity, and spare links are inactive. When they do not fit
 * (eight SXM boards with every pair linked), the board is an NVSwitch
 * system: every link is active and ends at a switch. The simulator does not
 * model the switches themselves, so their PCI identity is not supported.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "nvml_internal.h"

/* Hard cap on CPU numbers handled (a bitmask of 64 unsigned longs). */
#define VGP__NVML_MAX_CPUS 4096
#define VGP__NVML_MASK_WORDS (VGP__NVML_MAX_CPUS / 64)

/* ------------------------------------------------------------ CPU masks */

/* Reads a small sysfs file into buf (NUL-terminated). */
static int vgp__nvml_read_sysfs(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  ssize_t n;
  do
    n = read(fd, buf, len - 1);
  while (n < 0 && errno == EINTR);
  int saved = errno;
  close(fd);
  if (n < 0)
    return -saved;
  buf[n] = '\0';
  return 0;
}

/* Parses a kernel list such as "0-3,8,10-11" into mask; numbers past the
 * cap are ignored. Returns how many entries were set, or -EINVAL. */
static int vgp__nvml_parse_list(const char *text, uint64_t *mask) {
  const char *p = text;
  int count = 0;
  memset(mask, 0, VGP__NVML_MASK_WORDS * sizeof(uint64_t));
  while (*p != '\0' && *p != '\n') {
    unsigned long lo = 0, hi;
    if (!isdigit((unsigned char)*p))
      return -EINVAL;
    while (isdigit((unsigned char)*p) && lo < VGP__NVML_MAX_CPUS * 16ul)
      lo = lo * 10 + (unsigned long)(*p++ - '0');
    hi = lo;
    if (*p == '-') {
      p++;
      if (!isdigit((unsigned char)*p))
        return -EINVAL;
      hi = 0;
      while (isdigit((unsigned char)*p) && hi < VGP__NVML_MAX_CPUS * 16ul)
        hi = hi * 10 + (unsigned long)(*p++ - '0');
    }
    for (unsigned long c = lo; c <= hi && c < VGP__NVML_MAX_CPUS; c++) {
      if (!(mask[c / 64] & (1ull << (c % 64))))
        count++;
      mask[c / 64] |= 1ull << (c % 64);
    }
    if (*p == ',')
      p++;
  }
  return count;
}

static int vgp__nvml_read_list(const char *path, uint64_t *mask) {
  char buf[4096];
  int r = vgp__nvml_read_sysfs(path, buf, sizeof(buf));
  return r < 0 ? r : vgp__nvml_parse_list(buf, mask);
}

/* The simulated node's NUMA node count: one more than the largest node a
 * device names. */
static int vgp__nvml_sim_numa_nodes(const struct vgp_sim_node *node) {
  int max = -1;
  for (unsigned i = 0; i < node->device_count; i++)
    if (node->cfg[i].numa_node > max)
      max = node->cfg[i].numa_node;
  return max + 1;
}

/* Fills mask with the CPUs of simulated NUMA node numa (see the file
 * comment). Returns 0 or -errno. */
static int vgp__nvml_numa_cpus(const struct vgp_sim_node *node, int numa,
                               uint64_t *mask) {
  uint64_t online[VGP__NVML_MASK_WORDS], host_nodes[VGP__NVML_MASK_WORDS];
  char path[128];
  int ncpu = vgp__nvml_read_list("/sys/devices/system/cpu/online", online);
  if (ncpu <= 0) {
    /* Without sysfs, fall back to what the scheduler says exists. */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
      return -ENOSYS;
    memset(online, 0, sizeof(online));
    for (long c = 0; c < n && c < VGP__NVML_MAX_CPUS; c++)
      online[c / 64] |= 1ull << (c % 64);
    ncpu = (int)(n < VGP__NVML_MAX_CPUS ? n : VGP__NVML_MAX_CPUS);
  }
  if (numa < 0) {
    memcpy(mask, online, sizeof(online));
    return 0;
  }
  int sim_nodes = vgp__nvml_sim_numa_nodes(node);
  int nhost = vgp__nvml_read_list("/sys/devices/system/node/online", host_nodes);
  if (nhost >= sim_nodes && numa < VGP__NVML_MAX_CPUS &&
      (host_nodes[numa / 64] & (1ull << (numa % 64)))) {
    snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", numa);
    if (vgp__nvml_read_list(path, mask) > 0)
      return 0;
  }
  /* Split the online CPUs, in order, into sim_nodes equal shares. */
  memset(mask, 0, VGP__NVML_MASK_WORDS * sizeof(uint64_t));
  int lo = (int)((long)numa * ncpu / sim_nodes);
  int hi = (int)((long)(numa + 1) * ncpu / sim_nodes);
  if (hi == lo) /* fewer CPUs than nodes: share one */
    hi = (lo = numa % ncpu) + 1;
  for (int c = 0, k = 0; c < VGP__NVML_MAX_CPUS; c++) {
    if (!(online[c / 64] & (1ull << (c % 64))))
      continue;
    if (k >= lo && k < hi)
      mask[c / 64] |= 1ull << (c % 64);
    k++;
  }
  return 0;
}

static nvmlReturn_t vgp__nvml_cpu_affinity(nvmlDevice_t device,
                                           unsigned int cpuSetSize,
                                           unsigned long *cpuSet,
                                           nvmlAffinityScope_t scope) {
  uint64_t mask[VGP__NVML_MASK_WORDS];
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  /* A socket is one NUMA node here, so both scopes give the same set. */
  if (cpuSetSize == 0 || cpuSet == NULL ||
      (scope != NVML_AFFINITY_SCOPE_NODE && scope != NVML_AFFINITY_SCOPE_SOCKET)) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto out;
  }
  if (vgp__nvml_numa_cpus(sim->node, sim->node->cfg[i].numa_node, mask) < 0) {
    r = NVML_ERROR_UNKNOWN;
    goto out;
  }
  for (unsigned w = 0; w < cpuSetSize; w++)
    cpuSet[w] = w < VGP__NVML_MASK_WORDS ? (unsigned long)mask[w] : 0;
out:
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetCpuAffinity(nvmlDevice_t device,
                                                 unsigned int cpuSetSize,
                                                 unsigned long *cpuSet) {
  return vgp__nvml_cpu_affinity(device, cpuSetSize, cpuSet, NVML_AFFINITY_SCOPE_NODE);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetCpuAffinityWithinScope(nvmlDevice_t device,
                                                            unsigned int cpuSetSize,
                                                            unsigned long *cpuSet,
                                                            nvmlAffinityScope_t scope) {
  return vgp__nvml_cpu_affinity(device, cpuSetSize, cpuSet, scope);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetMemoryAffinity(nvmlDevice_t device,
                                                    unsigned int nodeSetSize,
                                                    unsigned long *nodeSet,
                                                    nvmlAffinityScope_t scope) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  int numa = sim->node->cfg[i].numa_node;
  if (nodeSetSize == 0 || nodeSet == NULL ||
      (scope != NVML_AFFINITY_SCOPE_NODE && scope != NVML_AFFINITY_SCOPE_SOCKET)) {
    r = NVML_ERROR_INVALID_ARGUMENT;
  } else if (numa < 0) {
    r = NVML_ERROR_NOT_SUPPORTED;
  } else {
    for (unsigned w = 0; w < nodeSetSize; w++)
      nodeSet[w] = 0;
    if ((unsigned)numa / 64 < nodeSetSize)
      nodeSet[numa / 64] = 1ul << (numa % 64);
  }
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetNumaNodeId(nvmlDevice_t device,
                                                unsigned int *node) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  vgp__nvml_end();
  return node == NULL ? NVML_ERROR_INVALID_ARGUMENT : NVML_ERROR_NOT_SUPPORTED;
}

/* Devices with an affinity to CPU cpuNumber. */
VGP_EXPORT nvmlReturn_t nvmlSystemGetTopologyGpuSet(unsigned int cpuNumber,
                                                    unsigned int *count,
                                                    nvmlDevice_t *deviceArray) {
  uint64_t mask[VGP__NVML_MASK_WORDS];
  unsigned found[VGP_SIM_MAX_DEVICES], n = 0;
  struct vgp_sim_handle *sim;
  nvmlReturn_t r = vgp__nvml_begin(&sim);
  if (r != NVML_SUCCESS)
    return r;
  if (count == NULL || cpuNumber >= VGP__NVML_MAX_CPUS ||
      (*count != 0 && deviceArray == NULL)) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto out;
  }
  if (vgp__nvml_numa_cpus(sim->node, -1, mask) < 0) {
    r = NVML_ERROR_UNKNOWN;
    goto out;
  }
  if (!(mask[cpuNumber / 64] & (1ull << (cpuNumber % 64)))) {
    r = NVML_ERROR_INVALID_ARGUMENT; /* not an online CPU */
    goto out;
  }
  for (unsigned d = 0; d < sim->node->device_count; d++) {
    if (vgp__nvml_numa_cpus(sim->node, sim->node->cfg[d].numa_node, mask) < 0) {
      r = NVML_ERROR_UNKNOWN;
      goto out;
    }
    if (mask[cpuNumber / 64] & (1ull << (cpuNumber % 64)))
      found[n++] = d;
  }
  if (*count == 0) {
    *count = n;
    goto out;
  }
  if (*count > n)
    *count = n;
  for (unsigned k = 0; k < *count; k++)
    deviceArray[k] = vgp__nvml_handle(found[k]);
out:
  vgp__nvml_end();
  return r;
}

/* -------------------------------------------------------------- topology */

static nvmlGpuTopologyLevel_t vgp__nvml_level(const struct vgp_sim_node *node,
                                              unsigned a, unsigned b) {
  if (a == b)
    return NVML_TOPOLOGY_INTERNAL;
  int na = node->cfg[a].numa_node, nb = node->cfg[b].numa_node;
  return (na >= 0 && na == nb) ? NVML_TOPOLOGY_NODE : NVML_TOPOLOGY_SYSTEM;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t device1,
                                                            nvmlDevice_t device2,
                                                            nvmlGpuTopologyLevel_t *pathInfo) {
  struct vgp_sim_handle *sim;
  unsigned a;
  nvmlReturn_t r = vgp__nvml_begin_device(device1, &sim, &a);
  if (r != NVML_SUCCESS)
    return r;
  int b = vgp__nvml_index_of(device2);
  if (b < 0 || pathInfo == NULL)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else
    *pathInfo = vgp__nvml_level(sim->node, a, (unsigned)b);
  vgp__nvml_end();
  return r;
}

/* The other devices no farther than level from device. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetTopologyNearestGpus(nvmlDevice_t device,
                                                         nvmlGpuTopologyLevel_t level,
                                                         unsigned int *count,
                                                         nvmlDevice_t *deviceArray) {
  struct vgp_sim_handle *sim;
  unsigned a, found[VGP_SIM_MAX_DEVICES], n = 0;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &a);
  if (r != NVML_SUCCESS)
    return r;
  if (count == NULL || (*count != 0 && deviceArray == NULL) ||
      (unsigned)level > NVML_TOPOLOGY_SYSTEM || (unsigned)level % 10 != 0) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto out;
  }
  for (unsigned b = 0; b < sim->node->device_count; b++)
    if (b != a && vgp__nvml_level(sim->node, a, b) <= level)
      found[n++] = b;
  if (*count == 0) {
    *count = n;
    goto out;
  }
  if (*count > n)
    *count = n;
  for (unsigned k = 0; k < *count; k++)
    deviceArray[k] = vgp__nvml_handle(found[k]);
out:
  vgp__nvml_end();
  return r;
}

static int vgp__nvml_linked(const struct vgp_sim_node *node, unsigned a,
                            unsigned b) {
  return node->cfg[a].nvlink[b] > 0 || node->cfg[b].nvlink[a] > 0;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetP2PStatus(nvmlDevice_t device1,
                                               nvmlDevice_t device2,
                                               nvmlGpuP2PCapsIndex_t p2pIndex,
                                               nvmlGpuP2PStatus_t *p2pStatus) {
  struct vgp_sim_handle *sim;
  unsigned a;
  nvmlReturn_t r = vgp__nvml_begin_device(device1, &sim, &a);
  if (r != NVML_SUCCESS)
    return r;
  int b = vgp__nvml_index_of(device2);
  /* A device is not its own peer (the simulated libcuda agrees). */
  if (b < 0 || (unsigned)b == a || p2pStatus == NULL ||
      (unsigned)p2pIndex >= NVML_P2P_CAPS_INDEX_UNKNOWN) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto out;
  }
  int linked = vgp__nvml_linked(sim->node, a, (unsigned)b);
  switch (p2pIndex) {
  case NVML_P2P_CAPS_INDEX_READ:
  case NVML_P2P_CAPS_INDEX_WRITE:
  case NVML_P2P_CAPS_INDEX_PCI:
    *p2pStatus = NVML_P2P_STATUS_OK;
    break;
  case NVML_P2P_CAPS_INDEX_NVLINK:
  case NVML_P2P_CAPS_INDEX_ATOMICS:
    *p2pStatus = linked ? NVML_P2P_STATUS_OK : NVML_P2P_STATUS_NOT_SUPPORTED;
    break;
  default:
    r = NVML_ERROR_INVALID_ARGUMENT;
    break;
  }
out:
  vgp__nvml_end();
  return r;
}

/* ---------------------------------------------------------------- NVLink */

struct vgp__nvml_link {
  int exists;      /* link < the device's link count */
  int active;
  int peer;        /* the GPU at the far end, or -1 (switch, or inactive) */
  int via_switch;
};

/* Works out what link `link` of device dev is (see the file comment).
 * Returns NVML_ERROR_NOT_SUPPORTED when the device has no NVLink at all. */
static nvmlReturn_t vgp__nvml_link_info(const struct vgp_sim_node *node,
                                        unsigned dev, unsigned link,
                                        struct vgp__nvml_link *ret) {
  const struct vgp_sim_device_config *c = &node->cfg[dev];
  const struct vgp_sim_preset *preset = vgp_sim_preset_find(c->model);
  unsigned links = preset != NULL ? preset->nvlink_links : 0, total = 0, widest = 0;
  for (unsigned j = 0; j < node->device_count; j++) {
    if (j == dev)
      continue;
    total += c->nvlink[j];
    if (c->nvlink[j] > widest)
      widest = c->nvlink[j];
  }
  if (links == 0)
    links = widest;
  if (links > NVML_NVLINK_MAX_LINKS)
    links = NVML_NVLINK_MAX_LINKS;
  if (links == 0)
    return NVML_ERROR_NOT_SUPPORTED;
  struct vgp__nvml_link l = {link < links, 0, -1, total > links};
  if (l.exists && l.via_switch) {
    l.active = 1;
  } else if (l.exists) {
    unsigned first = 0;
    for (unsigned j = 0; j < node->device_count; j++) {
      if (j == dev)
        continue;
      if (link >= first && link < first + c->nvlink[j]) {
        l.active = 1;
        l.peer = (int)j;
        break;
      }
      first += c->nvlink[j];
    }
  }
  *ret = l;
  return NVML_SUCCESS;
}

/* Common prologue of the per-link queries: device, out pointer and link
 * checked, link described. Leaves the lock held on success. */
static nvmlReturn_t vgp__nvml_begin_link(nvmlDevice_t device, unsigned link,
                                         const void *out,
                                         struct vgp_sim_handle **ret_sim,
                                         unsigned *ret_index,
                                         struct vgp__nvml_link *ret_link) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (out == NULL || link >= NVML_NVLINK_MAX_LINKS) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto fail;
  }
  r = vgp__nvml_link_info(sim->node, i, link, ret_link);
  if (r != NVML_SUCCESS)
    goto fail;
  if (!ret_link->exists) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto fail;
  }
  *ret_sim = sim;
  *ret_index = i;
  return NVML_SUCCESS;
fail:
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device,
                                                 unsigned int link,
                                                 nvmlEnableState_t *isActive) {
  struct vgp_sim_handle *sim;
  struct vgp__nvml_link l;
  unsigned index;
  nvmlReturn_t r = vgp__nvml_begin_link(device, link, isActive, &sim, &index, &l);
  if (r != NVML_SUCCESS)
    return r;
  *isActive = l.active ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
  vgp__nvml_end();
  return NVML_SUCCESS;
}

/* The NVLink generation follows from the GPU generation: Pascal 1.0,
 * Volta/Turing 2.0, Ampere/Ada 3.0, Hopper 4.0, Blackwell 5.0. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkVersion(nvmlDevice_t device,
                                                   unsigned int link,
                                                   unsigned int *version) {
  struct vgp_sim_handle *sim;
  struct vgp__nvml_link l;
  unsigned index;
  nvmlReturn_t r = vgp__nvml_begin_link(device, link, version, &sim, &index, &l);
  if (r != NVML_SUCCESS)
    return r;
  switch (sim->node->cfg[index].cc_major) {
  case 6: *version = NVML_NVLINK_VERSION_1_0; break;
  case 7: *version = NVML_NVLINK_VERSION_2_0; break;
  case 8: *version = NVML_NVLINK_VERSION_3_0; break;
  case 9: *version = NVML_NVLINK_VERSION_4_0; break;
  case 10:
  case 12: *version = NVML_NVLINK_VERSION_5_0; break;
  default: r = NVML_ERROR_NOT_SUPPORTED; break;
  }
  vgp__nvml_end();
  return r;
}

/* Every link of a simulated board can carry peer traffic and peer atomics;
 * none reaches system memory (that needs an NVLink-attached CPU) and none
 * is an SLI bridge. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkCapability(nvmlDevice_t device,
                                                      unsigned int link,
                                                      nvmlNvLinkCapability_t capability,
                                                      unsigned int *capResult) {
  struct vgp_sim_handle *sim;
  struct vgp__nvml_link l;
  unsigned index;
  nvmlReturn_t r = vgp__nvml_begin_link(device, link, capResult, &sim, &index, &l);
  if (r != NVML_SUCCESS)
    return r;
  switch (capability) {
  case NVML_NVLINK_CAP_P2P_SUPPORTED:
  case NVML_NVLINK_CAP_P2P_ATOMICS:
  case NVML_NVLINK_CAP_VALID:
    *capResult = 1;
    break;
  case NVML_NVLINK_CAP_SYSMEM_ACCESS:
  case NVML_NVLINK_CAP_SYSMEM_ATOMICS:
  case NVML_NVLINK_CAP_SLI_BRIDGE:
    *capResult = 0;
    break;
  default:
    r = NVML_ERROR_INVALID_ARGUMENT;
    break;
  }
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t device,
                                                            unsigned int link,
                                                            nvmlPciInfo_t *pci) {
  struct vgp_sim_handle *sim;
  struct vgp__nvml_link l;
  unsigned index;
  nvmlReturn_t r = vgp__nvml_begin_link(device, link, pci, &sim, &index, &l);
  if (r != NVML_SUCCESS)
    return r;
  if (l.peer < 0)
    r = NVML_ERROR_NOT_SUPPORTED; /* inactive, or ends at an unmodelled switch */
  else
    vgp__nvml_fill_pci(sim->node, (unsigned)l.peer, pci);
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t device,
                                                            unsigned int link,
                                                            nvmlIntNvLinkDeviceType_t *pNvLinkDeviceType) {
  struct vgp_sim_handle *sim;
  struct vgp__nvml_link l;
  unsigned index;
  nvmlReturn_t r = vgp__nvml_begin_link(device, link, pNvLinkDeviceType, &sim, &index, &l);
  if (r != NVML_SUCCESS)
    return r;
  if (l.via_switch)
    *pNvLinkDeviceType = NVML_NVLINK_DEVICE_TYPE_SWITCH;
  else if (l.peer >= 0)
    *pNvLinkDeviceType = NVML_NVLINK_DEVICE_TYPE_GPU;
  else
    *pNvLinkDeviceType = NVML_NVLINK_DEVICE_TYPE_UNKNOWN;
  vgp__nvml_end();
  return NVML_SUCCESS;
}
