/*
 * nvml_device.c - what a simulated device is: identity, PCI, memory,
 * clocks, power and modes.
 *
 * Everything reported here is either state the simulator keeps (memory in
 * use, from the node) or a fact of the modelled board that the device's
 * configuration carries (name, UUID, PCI ids, compute capability, maximum
 * clocks, memory bus width, power limit). What the simulator does not model
 * — temperatures, fans, power draw and energy, current clocks and
 * performance states, ECC, MIG, BAR1 — is answered with
 * NVML_ERROR_NOT_SUPPORTED, as NVIDIA's NVML answers for a board without
 * the feature, never with an invented reading.
 */
#include <stdio.h>
#include <string.h>

#include "nvml_internal.h"
#include "view.h"

/* -------------------------------------------------------------- identity */

VGP_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device,
                                           unsigned int *index) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (index == NULL)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else
    *index = i;
  vgp__nvml_end();
  return r;
}

/* The minor number is N of /dev/nvidiaN. A simulated node has no device
 * files; the number is the one NVIDIA's driver gives boards enumerated in
 * this order, so tools that key on it (device plugins) see the usual
 * 0..N-1. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device,
                                                 unsigned int *minorNumber) {
  return nvmlDeviceGetIndex(device, minorNumber);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name,
                                          unsigned int length) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (name == NULL)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else
    r = vgp__nvml_copy_string(name, length, sim->node->cfg[i].name);
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid,
                                          unsigned int length) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (uuid == NULL)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else
    r = vgp__nvml_copy_string(uuid, length, sim->node->cfg[i].uuid);
  vgp__nvml_end();
  return r;
}

/* Checks device and out, then reports that the simulator does not model
 * the quantity asked for. */
static nvmlReturn_t vgp__nvml_not_modelled(nvmlDevice_t device,
                                           const void *out) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  vgp__nvml_end();
  return out == NULL ? NVML_ERROR_INVALID_ARGUMENT : NVML_ERROR_NOT_SUPPORTED;
}

/* Board serial numbers are programmed into each board's infoROM; a
 * simulated board has none. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char *serial,
                                            unsigned int length) {
  return vgp__nvml_not_modelled(device, serial);
}

void vgp__nvml_fill_pci(const struct vgp_sim_node *node, unsigned index,
                        nvmlPciInfo_t *pci) {
  const struct vgp_sim_device_config *c = &node->cfg[index];
  memset(pci, 0, sizeof(*pci));
  /* A domain above 0xffff does not fit the legacy field; it is cut, as the
   * legacy format always was for such domains. */
  snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy),
           NVML_DEVICE_PCI_BUS_ID_LEGACY_FMT, c->pci_domain, c->pci_bus,
           c->pci_device);
  pci->domain = c->pci_domain;
  pci->bus = c->pci_bus;
  pci->device = c->pci_device;
  pci->pciDeviceId = c->pci_device_id;
  pci->pciSubSystemId = c->pci_subsystem_id;
  snprintf(pci->busId, sizeof(pci->busId), NVML_DEVICE_PCI_BUS_ID_FMT,
           c->pci_domain, c->pci_bus, c->pci_device);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device,
                                                nvmlPciInfo_t *pci) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (pci == NULL)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else
    vgp__nvml_fill_pci(sim->node, i, pci);
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetPciInfoExt(nvmlDevice_t device,
                                                nvmlPciInfoExt_t *pci) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlPciInfo_t base;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (pci == NULL) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto out;
  }
  if (pci->version != nvmlPciInfoExt_v1) {
    r = NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    goto out;
  }
  vgp__nvml_fill_pci(sim->node, i, &base);
  pci->domain = base.domain;
  pci->bus = base.bus;
  pci->device = base.device;
  pci->pciDeviceId = base.pciDeviceId;
  pci->pciSubSystemId = base.pciSubSystemId;
  /* Display controller (0x03); compute boards present themselves as a 3D
   * controller (0x02), GeForce boards as VGA-compatible (0x00). */
  pci->baseClass = 0x03;
  pci->subClass = strncmp(sim->node->cfg[i].name, "NVIDIA GeForce", 14) == 0 ? 0x00 : 0x02;
  memcpy(pci->busId, base.busId, sizeof(pci->busId));
out:
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device,
                                                           int *major,
                                                           int *minor) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (major == NULL || minor == NULL) {
    r = NVML_ERROR_INVALID_ARGUMENT;
  } else {
    *major = (int)sim->node->cfg[i].cc_major;
    *minor = (int)sim->node->cfg[i].cc_minor;
  }
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device,
                                                  nvmlDeviceArchitecture_t *arch) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (arch == NULL) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto out;
  }
  /* The architecture follows from the compute capability. */
  const struct vgp_sim_device_config *c = &sim->node->cfg[i];
  switch (c->cc_major) {
  case 3: *arch = NVML_DEVICE_ARCH_KEPLER; break;
  case 5: *arch = NVML_DEVICE_ARCH_MAXWELL; break;
  case 6: *arch = NVML_DEVICE_ARCH_PASCAL; break;
  case 7: *arch = c->cc_minor >= 5 ? NVML_DEVICE_ARCH_TURING : NVML_DEVICE_ARCH_VOLTA; break;
  case 8: *arch = c->cc_minor == 9 ? NVML_DEVICE_ARCH_ADA : NVML_DEVICE_ARCH_AMPERE; break;
  case 9: *arch = NVML_DEVICE_ARCH_HOPPER; break;
  case 10:
  case 12: *arch = NVML_DEVICE_ARCH_BLACKWELL; break;
  default: *arch = NVML_DEVICE_ARCH_UNKNOWN; break;
  }
out:
  vgp__nvml_end();
  return r;
}

/* ---------------------------------------------------------------- memory */

/* The simulator sets no memory aside for the driver: the configured total
 * is what processes can allocate, so "reserved" is 0 and v1's used (which
 * includes reserved memory) equals v2's. Memory a process's contexts take
 * is counted as that process's allocation, as on a real GPU. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device,
                                                nvmlMemory_t *memory) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (memory == NULL) {
    r = NVML_ERROR_INVALID_ARGUMENT;
  } else {
    uint64_t total = sim->node->cfg[i].total_memory;
    uint64_t used = vgp_view_used_bytes(sim, i);
    memory->total = total;
    memory->used = used;
    memory->free = total - used;
  }
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device,
                                                   nvmlMemory_v2_t *memory) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (memory == NULL) {
    r = NVML_ERROR_INVALID_ARGUMENT;
  } else if (memory->version != nvmlMemory_v2) {
    r = NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  } else {
    uint64_t total = sim->node->cfg[i].total_memory;
    uint64_t used = vgp_view_used_bytes(sim, i);
    memory->total = total;
    memory->reserved = 0;
    memory->used = used;
    memory->free = total - used;
  }
  vgp__nvml_end();
  return r;
}

/* BAR1 is the PCIe aperture onto device memory; the simulator has none. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetBAR1MemoryInfo(nvmlDevice_t device,
                                                    nvmlBAR1Memory_t *bar1Memory) {
  return vgp__nvml_not_modelled(device, bar1Memory);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetMemoryBusWidth(nvmlDevice_t device,
                                                    unsigned int *busWidth) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (busWidth == NULL)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else
    *busWidth = sim->node->cfg[i].mem_bus_width;
  vgp__nvml_end();
  return r;
}

/* ---------------------------------------------------------------- clocks */

/* Maximum clocks are the board's boost clocks from its data sheet. Video
 * clocks are not part of the model. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device,
                                                  nvmlClockType_t type,
                                                  unsigned int *clock) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  const struct vgp_sim_device_config *c = &sim->node->cfg[i];
  if (clock == NULL || (unsigned)type >= NVML_CLOCK_COUNT)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else if (type == NVML_CLOCK_GRAPHICS || type == NVML_CLOCK_SM)
    *clock = c->clock_khz / 1000;
  else if (type == NVML_CLOCK_MEM)
    *clock = c->mem_clock_khz / 1000;
  else
    r = NVML_ERROR_NOT_SUPPORTED;
  vgp__nvml_end();
  return r;
}

/* The simulator does not model clock management (a simulated kernel takes
 * the time it is given whatever the clock), so there is no current clock
 * to report, and no performance state. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device,
                                               nvmlClockType_t type,
                                               unsigned int *clock) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  vgp__nvml_end();
  if (clock == NULL || (unsigned)type >= NVML_CLOCK_COUNT)
    return NVML_ERROR_INVALID_ARGUMENT;
  return NVML_ERROR_NOT_SUPPORTED;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t device,
                                                      nvmlPstates_t *pState) {
  return vgp__nvml_not_modelled(device, pState);
}

/* ----------------------------------------------------------------- power */

/* The power limit is the board's rated power; nothing in the simulator can
 * change it, so the current, default and enforced limits are all that. */
static nvmlReturn_t vgp__nvml_power_limit(nvmlDevice_t device,
                                          unsigned int *limit) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (limit == NULL)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else
    *limit = sim->node->cfg[i].power_limit_mw;
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device,
                                                          unsigned int *limit) {
  return vgp__nvml_power_limit(device, limit);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t device,
                                                                 unsigned int *defaultLimit) {
  return vgp__nvml_power_limit(device, defaultLimit);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device,
                                                        unsigned int *limit) {
  return vgp__nvml_power_limit(device, limit);
}

/* Power draw, energy, temperature and fans are physics the simulator does
 * not model. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device,
                                                unsigned int *power) {
  return vgp__nvml_not_modelled(device, power);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device,
                                                            unsigned long long *energy) {
  return vgp__nvml_not_modelled(device, energy);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device,
                                                 nvmlTemperatureSensors_t sensorType,
                                                 unsigned int *temp) {
  if ((unsigned)sensorType >= NVML_TEMPERATURE_COUNT) {
    /* Still report an uninitialized library or bad handle first. */
    nvmlReturn_t r = vgp__nvml_not_modelled(device, temp);
    return r == NVML_ERROR_NOT_SUPPORTED ? NVML_ERROR_INVALID_ARGUMENT : r;
  }
  return vgp__nvml_not_modelled(device, temp);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t device,
                                              unsigned int *speed) {
  return vgp__nvml_not_modelled(device, speed);
}

/* ----------------------------------------------------------------- modes */

/* Any number of processes may hold contexts on a simulated device at once
 * (its engine time-slices them), which is the default compute mode. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device,
                                                 nvmlComputeMode_t *mode) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (mode == NULL)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else
    *mode = NVML_COMPUTEMODE_DEFAULT;
  vgp__nvml_end();
  return r;
}

/* Persistence mode keeps a device initialized while no client uses it. A
 * simulated device's state lives in the node file whether or not any
 * process has it open, so it is always in that mode. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device,
                                                     nvmlEnableState_t *mode) {
  struct vgp_sim_handle *sim;
  unsigned i;
  nvmlReturn_t r = vgp__nvml_begin_device(device, &sim, &i);
  if (r != NVML_SUCCESS)
    return r;
  if (mode == NULL)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else
    *mode = NVML_FEATURE_ENABLED;
  vgp__nvml_end();
  return r;
}

/* Simulated memory has no error correction to switch, and the simulator
 * does not partition devices (MIG). */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t device,
                                             nvmlEnableState_t *current,
                                             nvmlEnableState_t *pending) {
  return vgp__nvml_not_modelled(device, current == NULL ? NULL : pending);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device,
                                             unsigned int *currentMode,
                                             unsigned int *pendingMode) {
  return vgp__nvml_not_modelled(device, currentMode == NULL ? NULL : pendingMode);
}
