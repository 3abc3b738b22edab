/*
 * nvml_procs.c - what runs on a simulated device: utilization, per-process
 * utilization samples and running-process lists.
 *
 * All of it comes from what really ran: the simulated libcuda credits every
 * kernel's engine time, and every copy's copy-engine time, to the device
 * and to the process's slot in rings of 10 ms buckets (node.h). The
 * sampling model (1/6 s periods, one-second device utilization) is defined
 * in view.h and shared with `vgpool sim`.
 *
 * Per-process samples. A real GPU samples each process's SM and memory
 * activity every sample period and keeps a short history; NVML returns,
 * per process that was active since lastSeenTimeStamp, one sample whose
 * timestamp is the end of the latest period in which the process was
 * active and whose values average its activity over the periods since
 * lastSeenTimeStamp (over the whole history, 2 s here, when it is 0).
 * Feeding the largest timestamp back as lastSeenTimeStamp therefore
 * returns only processes that ran since, each once, which is what tools
 * such as nvidia-smi pmon, nvtop and HAMi's utilization watcher rely on.
 * A timestamp is the CPU time (microseconds since the epoch) at the end of
 * the sample period. No active process since lastSeenTimeStamp means
 * NVML_ERROR_NOT_FOUND, as NVIDIA documents.
 *
 * Process lists. A process is listed on a device while it is alive and
 * holds a CUDA context there; usedGpuMemory is everything it holds on the
 * device. The simulator has no graphics clients and no MPS server, so the
 * graphics and MPS lists are always empty.
 */
#include <string.h>

#include "clock.h"
#include "nvml_internal.h"
#include "view.h"

/* ------------------------------------------------------------ utilization */

VGP_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                                      nvmlUtilization_t *utilization) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (utilization == NULL) {
    r = NVML_ERROR_INVALID_ARGUMENT;
  } else {
    unsigned gpu, mem;
    vgp_view_device_util(sim->node, i, vgp__now_ns(), &gpu, &mem);
    utilization->gpu = gpu;
    utilization->memory = mem;
  }
  vgp__nvml_end();
  return r;
}

struct vgp__nvml_sample {
  uint32_t pid;
  uint64_t timestamp_us;
  unsigned sm;
  unsigned mem;
};

/* Collects one sample per process active on dev since last_seen_us (see
 * the file comment) into out[VGP_SIM_MAX_PROCS]; returns how many. Called
 * between begin and end. */
static unsigned vgp__nvml_collect_samples(struct vgp_sim_handle *sim,
                                          unsigned dev, uint64_t last_seen_us,
                                          struct vgp__nvml_sample *out) {
  uint64_t last = vgp_view_period_of(vgp__now_ns());
  uint64_t first = last > VGP_VIEW_HISTORY_PERIODS ? last - VGP_VIEW_HISTORY_PERIODS : 0;
  /* Skip the periods already seen: period k's samples carry the timestamp
   * of its end. */
  while (first < last &&
         vgp__nvml_timestamp_us(vgp_view_period_start(first + 1)) <= last_seen_us)
    first++;
  if (first >= last)
    return 0;
  uint64_t span = vgp_view_period_start(last) - vgp_view_period_start(first);
  unsigned n = 0;
  for (int s = 0; s < VGP_SIM_MAX_PROCS; s++) {
    struct vgp_sim_proc_slot *slot = &sim->node->slots[s];
    if (__atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) != VGP_SIM_SLOT_ACTIVE)
      continue;
    struct vgp_view_activity a;
    vgp_view_proc_activity(&slot->dev[dev], first, last, &a);
    if (!a.active || !vgp_sim_slot_alive(sim, s))
      continue;
    out[n].pid = (uint32_t)__atomic_load_n(&slot->pid, __ATOMIC_RELAXED);
    out[n].timestamp_us = vgp__nvml_timestamp_us(vgp_view_period_start(a.last_active + 1));
    out[n].sm = vgp_view_percent(a.sm_busy_ns, span);
    out[n].mem = vgp_view_percent(a.mem_busy_ns, span);
    n++;
  }
  return n;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                                        nvmlProcessUtilizationSample_t *utilization,
                                                        unsigned int *processSamplesCount,
                                                        unsigned long long lastSeenTimeStamp) {
  struct vgp__nvml_sample samples[VGP_SIM_MAX_PROCS];
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (processSamplesCount == NULL) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto out;
  }
  unsigned n = vgp__nvml_collect_samples(sim, i, lastSeenTimeStamp, samples);
  if (n == 0) {
    *processSamplesCount = 0;
    r = NVML_ERROR_NOT_FOUND;
    goto out;
  }
  /* A NULL buffer asks for the size needed. */
  if (utilization == NULL || *processSamplesCount < n) {
    *processSamplesCount = n;
    r = NVML_ERROR_INSUFFICIENT_SIZE;
    goto out;
  }
  for (unsigned k = 0; k < n; k++) {
    memset(&utilization[k], 0, sizeof(utilization[k]));
    utilization[k].pid = samples[k].pid;
    utilization[k].timeStamp = samples[k].timestamp_us;
    utilization[k].smUtil = samples[k].sm;
    utilization[k].memUtil = samples[k].mem;
  }
  *processSamplesCount = n;
out:
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetProcessesUtilizationInfo(nvmlDevice_t device,
                                                              nvmlProcessesUtilizationInfo_t *procesesUtilInfo) {
  struct vgp__nvml_sample samples[VGP_SIM_MAX_PROCS];
  nvmlProcessesUtilizationInfo_t *info = procesesUtilInfo;
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (info == NULL) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto out;
  }
  if (info->version != nvmlProcessesUtilizationInfo_v1) {
    r = NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    goto out;
  }
  unsigned n = vgp__nvml_collect_samples(sim, i, info->lastSeenTimeStamp, samples);
  if (n == 0) {
    info->processSamplesCount = 0;
    r = NVML_ERROR_NOT_FOUND;
    goto out;
  }
  if (info->procUtilArray == NULL || info->processSamplesCount < n) {
    info->processSamplesCount = n;
    r = NVML_ERROR_INSUFFICIENT_SIZE;
    goto out;
  }
  for (unsigned k = 0; k < n; k++) {
    nvmlProcessUtilizationInfo_v1_t *u = &info->procUtilArray[k];
    memset(u, 0, sizeof(*u));
    u->timeStamp = samples[k].timestamp_us;
    u->pid = samples[k].pid;
    u->smUtil = samples[k].sm;
    u->memUtil = samples[k].mem;
  }
  info->processSamplesCount = n;
out:
  vgp__nvml_end();
  return r;
}

/* ------------------------------------------------------ running processes */

enum vgp__nvml_proc_layout {
  VGP__NVML_PROC_V1,  /* nvmlProcessInfo_v1_t */
  VGP__NVML_PROC_V2,  /* nvmlProcessInfo_v2_t == nvmlProcessInfo_t (v2, v3) */
};

/* The list protocol every *RunningProcesses variant shares: *infoCount is
 * the capacity of infos on entry and the number of entries on return; a
 * capacity too small (0 to ask) gets NVML_ERROR_INSUFFICIENT_SIZE with the
 * count needed, and infos may then be NULL. `compute` is 0 for the lists the
 * simulator never has entries in (graphics, MPS). */
static nvmlReturn_t vgp__nvml_running(nvmlDevice_t device, unsigned int *infoCount,
                                      void *infos, int layout, int compute) {
  struct {
    uint32_t pid;
    uint64_t used;
  } found[VGP_SIM_MAX_PROCS];
  struct vgp_sim_handle *sim;
  unsigned i, n = 0;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (infoCount == NULL) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto out;
  }
  for (int s = 0; compute && s < VGP_SIM_MAX_PROCS; s++)
    if (vgp_view_slot_on_device(sim, s, i, &found[n].pid, &found[n].used))
      n++;
  if (*infoCount < n) {
    *infoCount = n;
    r = NVML_ERROR_INSUFFICIENT_SIZE;
    goto out;
  }
  if (n > 0 && infos == NULL) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto out;
  }
  for (unsigned k = 0; k < n; k++) {
    if (layout == VGP__NVML_PROC_V1) {
      nvmlProcessInfo_v1_t *p = (nvmlProcessInfo_v1_t *)infos + k;
      memset(p, 0, sizeof(*p));
      p->pid = found[k].pid;
      p->usedGpuMemory = found[k].used;
    } else {
      nvmlProcessInfo_v2_t *p = (nvmlProcessInfo_v2_t *)infos + k;
      memset(p, 0, sizeof(*p));
      p->pid = found[k].pid;
      p->usedGpuMemory = found[k].used;
      /* No MIG: both instance ids read "not applicable". */
      p->gpuInstanceId = 0xFFFFFFFFu;
      p->computeInstanceId = 0xFFFFFFFFu;
    }
  }
  *infoCount = n;
out:
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device,
                                                             unsigned int *infoCount,
                                                             nvmlProcessInfo_v1_t *infos) {
  return vgp__nvml_running(device, infoCount, infos, VGP__NVML_PROC_V1, 1);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device,
                                                                unsigned int *infoCount,
                                                                nvmlProcessInfo_v2_t *infos) {
  return vgp__nvml_running(device, infoCount, infos, VGP__NVML_PROC_V2, 1);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                                unsigned int *infoCount,
                                                                nvmlProcessInfo_t *infos) {
  return vgp__nvml_running(device, infoCount, infos, VGP__NVML_PROC_V2, 1);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device,
                                                              unsigned int *infoCount,
                                                              nvmlProcessInfo_v1_t *infos) {
  return vgp__nvml_running(device, infoCount, infos, VGP__NVML_PROC_V1, 0);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t device,
                                                                 unsigned int *infoCount,
                                                                 nvmlProcessInfo_v2_t *infos) {
  return vgp__nvml_running(device, infoCount, infos, VGP__NVML_PROC_V2, 0);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device,
                                                                 unsigned int *infoCount,
                                                                 nvmlProcessInfo_t *infos) {
  return vgp__nvml_running(device, infoCount, infos, VGP__NVML_PROC_V2, 0);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses(nvmlDevice_t device,
                                                                unsigned int *infoCount,
                                                                nvmlProcessInfo_v1_t *infos) {
  return vgp__nvml_running(device, infoCount, infos, VGP__NVML_PROC_V1, 0);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v2(nvmlDevice_t device,
                                                                   unsigned int *infoCount,
                                                                   nvmlProcessInfo_v2_t *infos) {
  return vgp__nvml_running(device, infoCount, infos, VGP__NVML_PROC_V2, 0);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v3(nvmlDevice_t device,
                                                                   unsigned int *infoCount,
                                                                   nvmlProcessInfo_t *infos) {
  return vgp__nvml_running(device, infoCount, infos, VGP__NVML_PROC_V2, 0);
}
