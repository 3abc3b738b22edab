/*
 * test_nvml.c - the simulated libnvidia-ml.so.1 reports what the node
 * holds and what really ran on it, with NVIDIA's error codes.
 *
 * Helper processes play CUDA applications by driving the node directly
 * (node.h): they claim a process slot, charge device memory, hold contexts
 * and run engine time, as the simulated libcuda does. The test process
 * links the built libnvidia-ml.so.1 and checks what NVML says about them.
 * Where a test needs kernels of several processes interleaved on one
 * engine at known times, the test process credits them to the helpers'
 * slots itself (the engine timeline is shared, so one writer is the only
 * way to lay out an exact interleaving in advance); a helper that runs a
 * device alone credits its own work.
 *
 * Timing: engine time is credited ahead of the clock on a fixed timeline,
 * so the figures NVML must report are known exactly; the only thing the
 * machine's speed decides is when the test reads them, and each such read
 * checks that it happened inside the window where the answer is defined
 * (retrying with a fresh timeline otherwise).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "node.h"
#include "vgp_test.h"
#include "vgpool_nvml.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* ----------------------------------------------------------- utilities */

static void use_node(const char *spec) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/node.state", vgp_test_tmpdir());
  setenv("VGPOOL_SIM_STATE", path, 1);
  setenv("VGPOOL_SIM_DEVICES", spec, 1);
  unsetenv("VGPOOL_SIM_CONFIG");
  setenv("VGPOOL_LOG", "off", 1);
}

static nvmlDevice_t dev_at(unsigned index) {
  nvmlDevice_t d = NULL;
  ASSERT_EQ_INT(nvmlDeviceGetHandleByIndex_v2(index, &d), NVML_SUCCESS);
  ASSERT_NOT_NULL(d);
  return d;
}

static void open_node(struct vgp_sim_handle *h) {
  char err[512];
  int r = vgp_sim_open(h, err, sizeof(err));
  if (r < 0)
    vgp_test_fail(__FILE__, __LINE__, "vgp_sim_open: %s", err);
}

/* Slot index of a live helper, or -1. */
static int slot_of(struct vgp_sim_handle *h, pid_t pid) {
  for (int i = 0; i < VGP_SIM_MAX_PROCS; i++)
    if (__atomic_load_n(&h->node->slots[i].state, __ATOMIC_ACQUIRE) == VGP_SIM_SLOT_ACTIVE &&
        h->node->slots[i].pid == pid)
      return i;
  return -1;
}

/* Number of processes NVML lists on dev (v3). */
static unsigned listed(nvmlDevice_t dev) {
  unsigned count = 0;
  nvmlReturn_t r = nvmlDeviceGetComputeRunningProcesses_v3(dev, &count, NULL);
  if (r != NVML_SUCCESS && r != NVML_ERROR_INSUFFICIENT_SIZE)
    vgp_test_fail(__FILE__, __LINE__, "process list: %d", (int)r);
  return count;
}

static uint64_t used_v1(nvmlDevice_t dev) {
  nvmlMemory_t m;
  ASSERT_EQ_INT(nvmlDeviceGetMemoryInfo(dev, &m), NVML_SUCCESS);
  return m.used;
}

/* The offset of NVML's timestamps (CPU microseconds since the epoch) from
 * CLOCK_MONOTONIC, as the test measures it (NVML rounds its own to 1 ms). */
static int64_t realtime_offset_us(void) {
  return (int64_t)vgp__realtime_us() - (int64_t)(vgp__now_ns() / 1000);
}

/* The simulator's sample periods (1/6 s, see src/sim/nvml/view.h). */
static uint64_t period_of(uint64_t t) { return t * 6 / VGP_NSEC_PER_SEC; }
static uint64_t period_start(uint64_t k) { return (k * VGP_NSEC_PER_SEC + 5) / 6; }

/* ------------------------------------------------------------- helpers */

/* A CUDA process: args are "dev:MiB:contexts" items; it claims a slot,
 * charges the memory, holds the contexts, and waits to be killed. */
VGP_HELPER(hold) {
  struct vgp_sim_handle h;
  char err[512];
  int slot;
  if (vgp_sim_open(&h, err, sizeof(err)) < 0) {
    fprintf(stderr, "hold: %s\n", err);
    return 2;
  }
  if (vgp_sim_slot_claim(&h, &slot) < 0)
    return 3;
  for (int i = 0; i < argc; i++) {
    unsigned dev, ctx;
    unsigned long long mib;
    if (sscanf(argv[i], "%u:%llu:%u", &dev, &mib, &ctx) != 3)
      return 4;
    if (mib > 0 && vgp_sim_mem_charge(&h, slot, (int)dev, mib * MiB) < 0)
      return 5;
    __atomic_add_fetch(&h.node->slots[slot].dev[dev].contexts, ctx, __ATOMIC_ACQ_REL);
  }
  for (;;)
    pause();
}

/* A process running a steady workload on one device by itself: args dev,
 * busy µs and copy µs per 10 ms. It keeps its kernels and copies laid out
 * 400 ms ahead of the clock on the 10 ms grid, as a stream with queued work
 * does, and runs until killed. */
VGP_HELPER(duty) {
  struct vgp_sim_handle h;
  char err[512];
  int slot;
  if (argc != 3 || vgp_sim_open(&h, err, sizeof(err)) < 0)
    return 2;
  int dev = atoi(argv[0]);
  uint64_t busy = strtoull(argv[1], NULL, 10) * VGP_NSEC_PER_USEC;
  uint64_t copy = strtoull(argv[2], NULL, 10) * VGP_NSEC_PER_USEC;
  if (vgp_sim_slot_claim(&h, &slot) < 0)
    return 3;
  __atomic_add_fetch(&h.node->slots[slot].dev[dev].contexts, 1, __ATOMIC_ACQ_REL);
  uint64_t step = 10 * VGP_NSEC_PER_MSEC;
  uint64_t next = (vgp__now_ns() / step + 1) * step;
  for (;;) {
    uint64_t horizon = vgp__now_ns() + 400 * VGP_NSEC_PER_MSEC;
    for (; next < horizon; next += step) {
      vgp_sim_engine_run(&h, slot, dev, next, busy);
      if (copy)
        vgp_sim_copy_account(&h, slot, dev, next + busy, copy);
    }
    vgp__sleep_ns(50 * VGP_NSEC_PER_MSEC);
  }
}

/* Calls nvmlInit_v2 in a fresh process (so the environment and the log
 * level are read anew) and exits with its result; with argument "retry" it
 * then removes the state file, sets VGPOOL_SIM_DEVICES to the second
 * argument and exits with the result of a second nvmlInit_v2. */
VGP_HELPER(nvml_init) {
  nvmlReturn_t r = nvmlInit_v2();
  if (argc >= 2 && strcmp(argv[0], "retry") == 0 && r != NVML_SUCCESS) {
    unlink(getenv("VGPOOL_SIM_STATE"));
    setenv("VGPOOL_SIM_DEVICES", argv[1], 1);
    r = nvmlInit_v2();
    unsigned count = 0;
    if (r == NVML_SUCCESS && (nvmlDeviceGetCount_v2(&count) != NVML_SUCCESS || count == 0))
      return 100;
  }
  return (int)r;
}

static void kill_and_reap(pid_t pid) {
  kill(pid, SIGKILL);
  vgp_test_wait(pid);
}

/* -------------------------------------------------------- initialization */

VGP_TEST(calls_before_init_and_after_shutdown_are_refused) {
  use_node("1xH100-80GB");
  unsigned count = 7;
  nvmlDevice_t d = NULL;
  char text[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE];

  ASSERT_EQ_INT(nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
  ASSERT_EQ_INT(count, 7);
  ASSERT_EQ_INT(nvmlDeviceGetHandleByIndex_v2(0, &d), NVML_ERROR_UNINITIALIZED);
  ASSERT_EQ_INT(nvmlSystemGetDriverVersion(text, sizeof(text)), NVML_ERROR_UNINITIALIZED);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_ERROR_UNINITIALIZED);
  /* The library's own version needs no init. */
  ASSERT_EQ_INT(nvmlSystemGetNVMLVersion(text, sizeof(text)), NVML_SUCCESS);
  ASSERT_EQ_STR(text, "13.580.65.06");
  int cuda = 0;
  ASSERT_EQ_INT(nvmlSystemGetCudaDriverVersion(&cuda), NVML_SUCCESS);
  ASSERT_EQ_INT(cuda, 13000);

  /* Reference counted: two inits need two shutdowns. */
  ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
  ASSERT_EQ_INT(nvmlInitWithFlags(NVML_INIT_FLAG_NO_GPUS), NVML_SUCCESS);
  d = dev_at(0);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
  ASSERT_EQ_INT(nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 1);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);

  unsigned index = 9;
  ASSERT_EQ_INT(nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
  ASSERT_EQ_INT(nvmlDeviceGetIndex(d, &index), NVML_ERROR_UNINITIALIZED);
  ASSERT_EQ_INT(index, 9);
  /* Extra shutdowns after a successful init are documented as harmless. */
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);

  /* Handles survive a shutdown/init cycle, as NVIDIA's do. */
  ASSERT_EQ_INT(nvmlInit(), NVML_SUCCESS);
  ASSERT_EQ_INT(nvmlDeviceGetIndex(d, &index), NVML_SUCCESS);
  ASSERT_EQ_INT(index, 0);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
}

VGP_TEST(system_versions) {
  use_node("1xT4");
  char text[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
  int cuda = 0;
  ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
  ASSERT_EQ_INT(nvmlSystemGetDriverVersion(text, sizeof(text)), NVML_SUCCESS);
  ASSERT_EQ_STR(text, "580.65.06");
  ASSERT_EQ_INT(nvmlSystemGetNVMLVersion(text, sizeof(text)), NVML_SUCCESS);
  ASSERT_EQ_STR(text, "13.580.65.06");
  ASSERT_EQ_INT(nvmlSystemGetCudaDriverVersion_v2(&cuda), NVML_SUCCESS);
  ASSERT_EQ_INT(cuda, 13000);
  /* Too small a buffer is refused and left alone; 10 bytes hold
   * "580.65.06" and its terminator exactly. */
  memset(text, 'x', sizeof(text));
  ASSERT_EQ_INT(nvmlSystemGetDriverVersion(text, 9), NVML_ERROR_INSUFFICIENT_SIZE);
  ASSERT_EQ_INT(text[0], 'x');
  ASSERT_EQ_INT(nvmlSystemGetDriverVersion(text, 10), NVML_SUCCESS);
  ASSERT_EQ_INT(nvmlSystemGetDriverVersion(NULL, 80), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlSystemGetCudaDriverVersion(NULL), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
}

/* ----------------------------------------------------------- enumeration */

VGP_TEST(devices_by_index_uuid_and_pci_bus_id) {
  use_node("2xH100-80GB,1xT4");
  unsigned count = 0;
  char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE], uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
  nvmlDevice_t found;
  ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
  ASSERT_EQ_INT(nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 3);
  ASSERT_EQ_INT(nvmlDeviceGetCount(&count), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 3);

  static const char *const names[] = {"NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3", "Tesla T4"};
  static const char *const buses[] = {"00000000:17:00.0", "00000000:2A:00.0", "00000000:3B:00.0"};
  static const char *const legacy[] = {"0000:17:00.0", "0000:2a:00.0", "3b:00.0"};
  nvmlDevice_t devs[3];
  for (unsigned i = 0; i < 3; i++) {
    devs[i] = dev_at(i);
    ASSERT_EQ_INT(nvmlDeviceGetHandleByIndex(i, &found), NVML_SUCCESS);
    ASSERT_EQ_PTR(found, devs[i]);
    unsigned index = 99;
    ASSERT_EQ_INT(nvmlDeviceGetIndex(devs[i], &index), NVML_SUCCESS);
    ASSERT_EQ_INT(index, i);
    ASSERT_EQ_INT(nvmlDeviceGetMinorNumber(devs[i], &index), NVML_SUCCESS);
    ASSERT_EQ_INT(index, i);
    ASSERT_EQ_INT(nvmlDeviceGetName(devs[i], name, sizeof(name)), NVML_SUCCESS);
    ASSERT_EQ_STR(name, names[i]);
    ASSERT_EQ_INT(nvmlDeviceGetUUID(devs[i], uuid, sizeof(uuid)), NVML_SUCCESS);
    ASSERT_EQ_INT(strlen(uuid), NVML_DEVICE_UUID_ASCII_LEN - 1);
    ASSERT_EQ_INT(strncmp(uuid, "GPU-", 4), 0);
    ASSERT_EQ_INT(nvmlDeviceGetHandleByUUID(uuid, &found), NVML_SUCCESS);
    ASSERT_EQ_PTR(found, devs[i]);
    ASSERT_EQ_INT(nvmlDeviceGetHandleByPciBusId_v2(buses[i], &found), NVML_SUCCESS);
    ASSERT_EQ_PTR(found, devs[i]);
    ASSERT_EQ_INT(nvmlDeviceGetHandleByPciBusId(legacy[i], &found), NVML_SUCCESS);
    ASSERT_EQ_PTR(found, devs[i]);
    nvmlPciInfo_t pci;
    ASSERT_EQ_INT(nvmlDeviceGetPciInfo_v3(devs[i], &pci), NVML_SUCCESS);
    ASSERT_EQ_STR(pci.busId, buses[i]);
  }
  ASSERT_TRUE(devs[0] != devs[1] && devs[1] != devs[2]);

  /* Two devices of one model still have distinct UUIDs. */
  char uuid1[NVML_DEVICE_UUID_BUFFER_SIZE];
  ASSERT_EQ_INT(nvmlDeviceGetUUID(devs[0], uuid, sizeof(uuid)), NVML_SUCCESS);
  ASSERT_EQ_INT(nvmlDeviceGetUUID(devs[1], uuid1, sizeof(uuid1)), NVML_SUCCESS);
  ASSERT_TRUE(strcmp(uuid, uuid1) != 0);

  /* Not on this node: NOT_FOUND; not a valid argument: INVALID_ARGUMENT. */
  found = (nvmlDevice_t)0x1;
  ASSERT_EQ_INT(nvmlDeviceGetHandleByUUID("GPU-00000000-0000-4000-8000-000000000000", &found),
                NVML_ERROR_NOT_FOUND);
  ASSERT_EQ_INT(nvmlDeviceGetHandleByPciBusId_v2("00000000:99:00.0", &found), NVML_ERROR_NOT_FOUND);
  ASSERT_EQ_INT(nvmlDeviceGetHandleByPciBusId_v2("00000000:17:00.1", &found), NVML_ERROR_NOT_FOUND);
  ASSERT_EQ_PTR(found, (nvmlDevice_t)0x1);
  static const char *const bad_bus[] = {"", "17", "zz:00.0", "0000:17:00", "0000:17:00.0x",
                                        "0000:117:00.0", "0:0:0:17:00.0", "17:20.0"};
  for (size_t k = 0; k < sizeof(bad_bus) / sizeof(bad_bus[0]); k++)
    ASSERT_EQ_INT(nvmlDeviceGetHandleByPciBusId_v2(bad_bus[k], &found), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetHandleByPciBusId_v2(NULL, &found), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetHandleByPciBusId_v2(buses[0], NULL), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetHandleByUUID(NULL, &found), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetHandleByUUID(uuid, NULL), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetHandleByIndex_v2(3, &found), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetHandleByIndex_v2(0, NULL), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetCount_v2(NULL), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_PTR(found, (nvmlDevice_t)0x1);

  /* A name buffer one byte short is refused and untouched. */
  memset(name, 'x', sizeof(name));
  ASSERT_EQ_INT(nvmlDeviceGetName(devs[2], name, (unsigned)strlen("Tesla T4")),
                NVML_ERROR_INSUFFICIENT_SIZE);
  ASSERT_EQ_INT(name[0], 'x');
  ASSERT_EQ_INT(nvmlDeviceGetName(devs[2], name, (unsigned)strlen("Tesla T4") + 1), NVML_SUCCESS);
  ASSERT_EQ_INT(nvmlDeviceGetUUID(devs[0], uuid, NVML_DEVICE_UUID_ASCII_LEN - 1),
                NVML_ERROR_INSUFFICIENT_SIZE);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
}

VGP_TEST(device_facts) {
  use_node("2xH100-80GB,1xT4");
  ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
  nvmlDevice_t h100 = dev_at(0), t4 = dev_at(2);
  nvmlPciInfo_t pci;
  ASSERT_EQ_INT(nvmlDeviceGetPciInfo_v3(h100, &pci), NVML_SUCCESS);
  ASSERT_EQ_STR(pci.busIdLegacy, "0000:17:00.0");
  ASSERT_EQ_INT(pci.domain, 0);
  ASSERT_EQ_INT(pci.bus, 0x17);
  ASSERT_EQ_INT(pci.device, 0);
  ASSERT_EQ_U64(pci.pciDeviceId, 0x233010deu);
  ASSERT_EQ_INT(nvmlDeviceGetPciInfo_v3(t4, &pci), NVML_SUCCESS);
  ASSERT_EQ_U64(pci.pciDeviceId, 0x1eb810deu);

  nvmlPciInfoExt_t ext;
  memset(&ext, 0, sizeof(ext));
  ext.version = 1;
  ASSERT_EQ_INT(nvmlDeviceGetPciInfoExt(h100, &ext), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  ext.version = nvmlPciInfoExt_v1;
  ASSERT_EQ_INT(nvmlDeviceGetPciInfoExt(h100, &ext), NVML_SUCCESS);
  ASSERT_EQ_STR(ext.busId, "00000000:17:00.0");
  ASSERT_EQ_INT(ext.baseClass, 3);
  ASSERT_EQ_INT(ext.subClass, 2);
  ASSERT_EQ_U64(ext.pciDeviceId, 0x233010deu);

  int major = 0, minor = 0;
  ASSERT_EQ_INT(nvmlDeviceGetCudaComputeCapability(h100, &major, &minor), NVML_SUCCESS);
  ASSERT_EQ_INT(major * 10 + minor, 90);
  ASSERT_EQ_INT(nvmlDeviceGetCudaComputeCapability(t4, &major, &minor), NVML_SUCCESS);
  ASSERT_EQ_INT(major * 10 + minor, 75);
  nvmlDeviceArchitecture_t arch = 0;
  ASSERT_EQ_INT(nvmlDeviceGetArchitecture(h100, &arch), NVML_SUCCESS);
  ASSERT_EQ_INT(arch, NVML_DEVICE_ARCH_HOPPER);
  ASSERT_EQ_INT(nvmlDeviceGetArchitecture(t4, &arch), NVML_SUCCESS);
  ASSERT_EQ_INT(arch, NVML_DEVICE_ARCH_TURING);

  unsigned v = 0;
  ASSERT_EQ_INT(nvmlDeviceGetPowerManagementLimit(h100, &v), NVML_SUCCESS);
  ASSERT_EQ_INT(v, 700000);
  ASSERT_EQ_INT(nvmlDeviceGetEnforcedPowerLimit(t4, &v), NVML_SUCCESS);
  ASSERT_EQ_INT(v, 70000);
  ASSERT_EQ_INT(nvmlDeviceGetMaxClockInfo(h100, NVML_CLOCK_SM, &v), NVML_SUCCESS);
  ASSERT_EQ_INT(v, 1980);
  ASSERT_EQ_INT(nvmlDeviceGetMaxClockInfo(h100, NVML_CLOCK_MEM, &v), NVML_SUCCESS);
  ASSERT_EQ_INT(v, 2619);
  ASSERT_EQ_INT(nvmlDeviceGetMemoryBusWidth(h100, &v), NVML_SUCCESS);
  ASSERT_EQ_INT(v, 5120);
  ASSERT_EQ_INT(nvmlDeviceGetMaxClockInfo(h100, NVML_CLOCK_COUNT, &v), NVML_ERROR_INVALID_ARGUMENT);
  nvmlComputeMode_t mode = NVML_COMPUTEMODE_PROHIBITED;
  ASSERT_EQ_INT(nvmlDeviceGetComputeMode(h100, &mode), NVML_SUCCESS);
  ASSERT_EQ_INT(mode, NVML_COMPUTEMODE_DEFAULT);
  nvmlEnableState_t state = NVML_FEATURE_DISABLED;
  ASSERT_EQ_INT(nvmlDeviceGetPersistenceMode(h100, &state), NVML_SUCCESS);
  ASSERT_EQ_INT(state, NVML_FEATURE_ENABLED);

  /* What the simulator does not model is NOT_SUPPORTED, never a number. */
  v = 12345;
  unsigned long long e = 12345;
  nvmlBAR1Memory_t bar1;
  nvmlPstates_t ps;
  ASSERT_EQ_INT(nvmlDeviceGetTemperature(h100, NVML_TEMPERATURE_GPU, &v), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlDeviceGetPowerUsage(h100, &v), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlDeviceGetTotalEnergyConsumption(h100, &e), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlDeviceGetFanSpeed(h100, &v), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlDeviceGetClockInfo(h100, NVML_CLOCK_SM, &v), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlDeviceGetPerformanceState(h100, &ps), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlDeviceGetBAR1MemoryInfo(h100, &bar1), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlDeviceGetMigMode(h100, &v, &v), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlDeviceGetEccMode(h100, &state, &state), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlDeviceGetSerial(h100, (char *)&bar1, 30), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(v, 12345);
  ASSERT_EQ_U64(e, 12345);
  ASSERT_EQ_INT(nvmlDeviceGetTemperature(h100, NVML_TEMPERATURE_COUNT, &v), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetPowerUsage(h100, NULL), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
}

/* ---------------------------------------------------------------- memory */

VGP_TEST(memory_is_what_processes_hold) {
  use_node("2xH100-80GB,1xT4");
  ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
  nvmlDevice_t d0 = dev_at(0), d1 = dev_at(1), d2 = dev_at(2);
  const uint64_t total = 81559 * MiB;
  nvmlMemory_t m;
  ASSERT_EQ_INT(nvmlDeviceGetMemoryInfo(d0, &m), NVML_SUCCESS);
  ASSERT_EQ_U64(m.total, total);
  ASSERT_EQ_U64(m.used, 0);
  ASSERT_EQ_U64(m.free, total);

  pid_t a = vgp_test_spawn("hold", "0:1024:1", "1:256:1", NULL);
  pid_t b = vgp_test_spawn("hold", "0:512:2", NULL);
  VGP_WAIT_UNTIL(listed(d0) == 2 && listed(d1) == 1, 20000);

  ASSERT_EQ_INT(nvmlDeviceGetMemoryInfo(d0, &m), NVML_SUCCESS);
  ASSERT_EQ_U64(m.total, total);
  ASSERT_EQ_U64(m.used, 1536 * MiB);
  ASSERT_EQ_U64(m.free, total - 1536 * MiB);
  ASSERT_EQ_U64(used_v1(d1), 256 * MiB);
  ASSERT_EQ_U64(used_v1(d2), 0);
  ASSERT_EQ_U64(used_v1(d2), 0);

  nvmlMemory_v2_t m2;
  memset(&m2, 0xff, sizeof(m2));
  m2.version = nvmlMemory_v2;
  ASSERT_EQ_INT(nvmlDeviceGetMemoryInfo_v2(d0, &m2), NVML_SUCCESS);
  ASSERT_EQ_U64(m2.version, 0x02000028u);
  ASSERT_EQ_U64(m2.total, total);
  ASSERT_EQ_U64(m2.reserved, 0);
  ASSERT_EQ_U64(m2.used, 1536 * MiB);
  ASSERT_EQ_U64(m2.free, total - 1536 * MiB);

  /* A struct without the right version is refused and left alone. */
  memset(&m2, 0, sizeof(m2));
  m2.version = (unsigned)(sizeof(nvmlMemory_t) | (1u << 24));
  ASSERT_EQ_INT(nvmlDeviceGetMemoryInfo_v2(d0, &m2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  ASSERT_EQ_U64(m2.total, 0);
  m2.version = 0;
  ASSERT_EQ_INT(nvmlDeviceGetMemoryInfo_v2(d0, &m2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  ASSERT_EQ_INT(nvmlDeviceGetMemoryInfo_v2(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetMemoryInfo(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);

  kill_and_reap(a);
  kill_and_reap(b);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
}

/* ------------------------------------------------------------- processes */

VGP_TEST(process_lists_and_their_size_protocol) {
  use_node("2xH100-80GB,1xT4");
  ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
  nvmlDevice_t d0 = dev_at(0), d2 = dev_at(2);
  pid_t a = vgp_test_spawn("hold", "0:1024:1", NULL);
  pid_t b = vgp_test_spawn("hold", "0:300:1", "2:0:1", NULL);
  /* Memory without a context is not a running CUDA process. */
  pid_t c = vgp_test_spawn("hold", "0:100:0", NULL);
  VGP_WAIT_UNTIL(listed(d0) == 2 && listed(d2) == 1 && used_v1(d0) == 1424 * MiB, 20000);

  /* Asking with a count of 0 (infos may be NULL) gives the size. */
  unsigned count = 0;
  ASSERT_EQ_INT(nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, NULL),
                NVML_ERROR_INSUFFICIENT_SIZE);
  ASSERT_EQ_INT(count, 2);
  nvmlProcessInfo_t infos[4];
  memset(infos, 0x5a, sizeof(infos));
  count = 1;
  ASSERT_EQ_INT(nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, infos),
                NVML_ERROR_INSUFFICIENT_SIZE);
  ASSERT_EQ_INT(count, 2);
  ASSERT_EQ_INT(infos[0].pid, 0x5a5a5a5a);
  count = 4;
  ASSERT_EQ_INT(nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, NULL),
                NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, infos), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 2);
  int seen_a = 0, seen_b = 0;
  for (unsigned k = 0; k < count; k++) {
    ASSERT_EQ_U64(infos[k].gpuInstanceId, 0xFFFFFFFFu);
    ASSERT_EQ_U64(infos[k].computeInstanceId, 0xFFFFFFFFu);
    if ((pid_t)infos[k].pid == a) {
      seen_a++;
      ASSERT_EQ_U64(infos[k].usedGpuMemory, 1024 * MiB);
    } else if ((pid_t)infos[k].pid == b) {
      seen_b++;
      ASSERT_EQ_U64(infos[k].usedGpuMemory, 300 * MiB);
    }
  }
  ASSERT_EQ_INT(seen_a, 1);
  ASSERT_EQ_INT(seen_b, 1);

  /* The v2 list has the same layout; v1 has the short one. */
  nvmlProcessInfo_v2_t v2[2];
  count = 2;
  ASSERT_EQ_INT(nvmlDeviceGetComputeRunningProcesses_v2(d0, &count, v2), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 2);
  ASSERT_EQ_U64(v2[0].usedGpuMemory + v2[1].usedGpuMemory, 1324 * MiB);
  nvmlProcessInfo_v1_t v1[3];
  memset(v1, 0, sizeof(v1));
  count = 3;
  ASSERT_EQ_INT(nvmlDeviceGetComputeRunningProcesses(d0, &count, v1), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 2);
  ASSERT_EQ_U64(v1[0].usedGpuMemory + v1[1].usedGpuMemory, 1324 * MiB);
  ASSERT_EQ_INT(v1[2].pid, 0);

  /* A context with no memory is listed with 0 bytes. */
  count = 1;
  ASSERT_EQ_INT(nvmlDeviceGetComputeRunningProcesses_v3(d2, &count, infos), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 1);
  ASSERT_EQ_INT(infos[0].pid, b);
  ASSERT_EQ_U64(infos[0].usedGpuMemory, 0);
  /* Nothing on a device: SUCCESS with 0, NULL allowed. */
  count = 0;
  ASSERT_EQ_INT(nvmlDeviceGetComputeRunningProcesses_v3(dev_at(1), &count, NULL), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 0);
  /* No graphics or MPS clients exist on the simulator. */
  count = 0;
  ASSERT_EQ_INT(nvmlDeviceGetGraphicsRunningProcesses_v3(d0, &count, NULL), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 0);
  ASSERT_EQ_INT(nvmlDeviceGetMPSComputeRunningProcesses_v3(d0, &count, NULL), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 0);
  ASSERT_EQ_INT(nvmlDeviceGetComputeRunningProcesses_v3(d0, NULL, infos), NVML_ERROR_INVALID_ARGUMENT);

  char name[64];
  ASSERT_EQ_INT(nvmlSystemGetProcessName((unsigned)a, name, sizeof(name)), NVML_SUCCESS);
  ASSERT_EQ_STR(name, "test_nvml");
  ASSERT_EQ_INT(nvmlSystemGetProcessName((unsigned)a, name, 5), NVML_SUCCESS);
  ASSERT_EQ_STR(name, "test");
  ASSERT_EQ_INT(nvmlSystemGetProcessName((unsigned)a, NULL, 5), NVML_ERROR_INVALID_ARGUMENT);

  kill_and_reap(a);
  kill_and_reap(b);
  kill_and_reap(c);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
}

VGP_TEST(a_killed_process_disappears_with_its_memory) {
  use_node("1xH100-80GB");
  ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
  nvmlDevice_t d0 = dev_at(0);
  pid_t keep = vgp_test_spawn("hold", "0:128:1", NULL);
  pid_t victim = vgp_test_spawn("hold", "0:2048:1", NULL);
  VGP_WAIT_UNTIL(listed(d0) == 2 && used_v1(d0) == 2176 * MiB, 20000);

  kill_and_reap(victim);
  /* The kernel dropped the victim's liveness lock: NVML stops counting it
   * at once, before anyone has reclaimed its slot, as a real driver frees
   * a dead process's memory at once. */
  struct vgp_sim_handle h;
  open_node(&h);
  ASSERT_TRUE(slot_of(&h, victim) >= 0);
  ASSERT_EQ_U64(h.node->dev[0].used_bytes, 2176 * MiB);
  ASSERT_EQ_U64(used_v1(d0), 128 * MiB);
  ASSERT_EQ_INT(listed(d0), 1);
  nvmlProcessInfo_t info[2];
  unsigned count = 2;
  ASSERT_EQ_INT(nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, info), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 1);
  ASSERT_EQ_INT(info[0].pid, keep);

  /* After the reclaim the node agrees, and NVML still says the same. */
  ASSERT_EQ_INT(vgp_sim_reclaim_dead(&h), 1);
  ASSERT_EQ_INT(slot_of(&h, victim), -1);
  ASSERT_EQ_U64(h.node->dev[0].used_bytes, 128 * MiB);
  ASSERT_EQ_U64(used_v1(d0), 128 * MiB);
  ASSERT_EQ_INT(listed(d0), 1);
  vgp_sim_close(&h);
  kill_and_reap(keep);
  VGP_WAIT_UNTIL(used_v1(d0) == 0 && listed(d0) == 0, 5000);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
}

/* ------------------------------------------------------------ utilization */

struct util_read {
  nvmlUtilization_t util;
  nvmlProcessUtilizationSample_t samples[4];
  unsigned count;
  nvmlReturn_t samples_result;
};

/* Lays out 2.3 s of work on device 0 from t0, on a 10 ms grid: helper A
 * runs 2 ms, then helper B 5 ms, then the device idles 3 ms. B also copies
 * for 1 ms. Device 0 must then be 70% busy, A 20% and B 50%. */
static void lay_out_work(struct vgp_sim_handle *h, int slot_a, int slot_b,
                         uint64_t t0, uint64_t len) {
  for (uint64_t t = t0; t < t0 + len; t += 10 * VGP_NSEC_PER_MSEC) {
    uint64_t s = vgp_sim_engine_run(h, slot_a, 0, t, 2 * VGP_NSEC_PER_MSEC);
    ASSERT_EQ_U64(s, t);
    s = vgp_sim_engine_run(h, slot_b, 0, t + 2 * VGP_NSEC_PER_MSEC, 5 * VGP_NSEC_PER_MSEC);
    ASSERT_EQ_U64(s, t + 2 * VGP_NSEC_PER_MSEC);
    vgp_sim_copy_account(h, slot_b, 0, t + 7 * VGP_NSEC_PER_MSEC, VGP_NSEC_PER_MSEC);
  }
}

VGP_TEST_TIMEOUT(utilization_and_samples_reflect_what_ran, 120) {
  use_node("2xH100-80GB");
  ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
  nvmlDevice_t d0 = dev_at(0);
  pid_t a = vgp_test_spawn("hold", "0:64:1", NULL);
  pid_t b = vgp_test_spawn("hold", "0:64:1", NULL);
  struct vgp_sim_handle h;
  open_node(&h);
  VGP_WAIT_UNTIL(slot_of(&h, a) >= 0 && slot_of(&h, b) >= 0, 20000);
  int slot_a = slot_of(&h, a), slot_b = slot_of(&h, b);

  /* Before anything ran: 0% and no samples. */
  nvmlUtilization_t u = {55, 55};
  unsigned count = 0;
  ASSERT_EQ_INT(nvmlDeviceGetUtilizationRates(d0, &u), NVML_SUCCESS);
  ASSERT_EQ_INT(u.gpu, 0);
  ASSERT_EQ_INT(u.memory, 0);
  ASSERT_EQ_INT(nvmlDeviceGetProcessUtilization(d0, NULL, &count, 0), NVML_ERROR_NOT_FOUND);

  const uint64_t len = 2300 * VGP_NSEC_PER_MSEC;
  struct util_read r;
  uint64_t t0 = 0, last_seen = 0;
  int valid = 0;
  for (int attempt = 0; attempt < 4 && !valid; attempt++) {
    /* Start on a sample-period boundary after anything already queued. */
    uint64_t busy_until = __atomic_load_n(&h.node->dev[0].busy_until_ns, __ATOMIC_ACQUIRE);
    uint64_t from = vgp__now_ns() + 50 * VGP_NSEC_PER_MSEC;
    t0 = period_start(period_of(from > busy_until ? from : busy_until) + 1);
    lay_out_work(&h, slot_a, slot_b, t0, len);
    /* Samples since a moment inside the first period of the work. */
    last_seen = (uint64_t)((int64_t)((t0 + 10 * VGP_NSEC_PER_MSEC) / 1000) + realtime_offset_us());
    vgp__sleep_until_ns(t0 + 1250 * VGP_NSEC_PER_MSEC);
    memset(&r, 0, sizeof(r));
    ASSERT_EQ_INT(nvmlDeviceGetUtilizationRates(d0, &r.util), NVML_SUCCESS);
    r.count = 0;
    ASSERT_EQ_INT(nvmlDeviceGetProcessUtilization(d0, NULL, &r.count, last_seen),
                  NVML_ERROR_INSUFFICIENT_SIZE);
    ASSERT_EQ_INT(r.count, 2);
    r.count = 4;
    r.samples_result = nvmlDeviceGetProcessUtilization(d0, r.samples, &r.count, last_seen);
    /* Valid only if the reads saw nothing but the laid-out work. */
    valid = vgp__now_ns() < t0 + len - 20 * VGP_NSEC_PER_MSEC;
  }
  ASSERT_TRUE(valid);
  ASSERT_EQ_INT(r.util.gpu, 70);
  ASSERT_EQ_INT(r.util.memory, 10);
  ASSERT_EQ_INT(r.samples_result, NVML_SUCCESS);
  ASSERT_EQ_INT(r.count, 2);
  uint64_t newest = 0, now_us = vgp__realtime_us();
  for (unsigned k = 0; k < 2; k++) {
    nvmlProcessUtilizationSample_t *s = &r.samples[k];
    ASSERT_GT_U64(s->timeStamp, last_seen);
    ASSERT_LE_U64(s->timeStamp, now_us + 2000);
    ASSERT_EQ_INT(s->encUtil, 0);
    ASSERT_EQ_INT(s->decUtil, 0);
    if ((pid_t)s->pid == a) {
      ASSERT_GE_INT(s->smUtil, 19);
      ASSERT_LE_INT(s->smUtil, 21);
      ASSERT_EQ_INT(s->memUtil, 0);
    } else {
      ASSERT_EQ_INT(s->pid, b);
      ASSERT_GE_INT(s->smUtil, 49);
      ASSERT_LE_INT(s->smUtil, 51);
      ASSERT_GE_INT(s->memUtil, 9);
      ASSERT_LE_INT(s->memUtil, 11);
    }
    if (s->timeStamp > newest)
      newest = s->timeStamp;
  }
  ASSERT_TRUE(r.samples[0].pid != r.samples[1].pid);

  /* The versioned API reports the same samples. */
  nvmlProcessUtilizationInfo_v1_t infos[4];
  nvmlProcessesUtilizationInfo_t pu;
  memset(&pu, 0, sizeof(pu));
  pu.version = 1;
  ASSERT_EQ_INT(nvmlDeviceGetProcessesUtilizationInfo(d0, &pu), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  pu.version = nvmlProcessesUtilizationInfo_v1;
  pu.lastSeenTimeStamp = last_seen;
  ASSERT_EQ_INT(nvmlDeviceGetProcessesUtilizationInfo(d0, &pu), NVML_ERROR_INSUFFICIENT_SIZE);
  ASSERT_EQ_INT(pu.processSamplesCount, 2);
  pu.procUtilArray = infos;
  ASSERT_EQ_INT(nvmlDeviceGetProcessesUtilizationInfo(d0, &pu), NVML_SUCCESS);
  ASSERT_EQ_INT(pu.processSamplesCount, 2);
  ASSERT_GE_INT(infos[0].smUtil + infos[1].smUtil, 68);
  ASSERT_LE_INT(infos[0].smUtil + infos[1].smUtil, 72);

  /* Handing back the newest timestamp returns only newer samples. */
  r.count = 4;
  nvmlReturn_t again = nvmlDeviceGetProcessUtilization(d0, r.samples, &r.count, newest);
  ASSERT_TRUE(again == NVML_SUCCESS || again == NVML_ERROR_NOT_FOUND);
  for (unsigned k = 0; again == NVML_SUCCESS && k < r.count; k++)
    ASSERT_GT_U64(r.samples[k].timeStamp, newest);

  /* Once the work and the history window are over, all is quiet. */
  vgp__sleep_until_ns(t0 + len + 2500 * VGP_NSEC_PER_MSEC);
  ASSERT_EQ_INT(nvmlDeviceGetUtilizationRates(d0, &u), NVML_SUCCESS);
  ASSERT_EQ_INT(u.gpu, 0);
  count = 4;
  ASSERT_EQ_INT(nvmlDeviceGetProcessUtilization(d0, r.samples, &count, 0), NVML_ERROR_NOT_FOUND);
  ASSERT_EQ_INT(count, 0);
  ASSERT_EQ_INT(nvmlDeviceGetProcessUtilization(d0, r.samples, NULL, 0), NVML_ERROR_INVALID_ARGUMENT);

  vgp_sim_close(&h);
  kill_and_reap(a);
  kill_and_reap(b);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
}

static int duty_seen(nvmlDevice_t dev, pid_t pid) {
  nvmlUtilization_t u;
  nvmlProcessUtilizationSample_t s[4];
  unsigned count = 4;
  if (nvmlDeviceGetUtilizationRates(dev, &u) != NVML_SUCCESS || u.gpu < 28 ||
      u.gpu > 32 || u.memory < 3 || u.memory > 7)
    return 0;
  if (nvmlDeviceGetProcessUtilization(dev, s, &count, 0) != NVML_SUCCESS || count != 1)
    return 0;
  return (pid_t)s[0].pid == pid && s[0].smUtil >= 28 && s[0].smUtil <= 32 &&
         s[0].memUtil >= 3 && s[0].memUtil <= 7;
}

VGP_TEST_TIMEOUT(a_process_running_alone_gets_its_share, 120) {
  use_node("2xH100-80GB");
  ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
  nvmlDevice_t d1 = dev_at(1);
  /* 3 ms of kernels and 0.5 ms of copies every 10 ms on device 1. */
  pid_t p = vgp_test_spawn("duty", "1", "3000", "500", NULL);
  VGP_WAIT_UNTIL(duty_seen(d1, p), 30000);
  /* Device 0 saw none of it. */
  nvmlUtilization_t u;
  unsigned count = 0;
  ASSERT_EQ_INT(nvmlDeviceGetUtilizationRates(dev_at(0), &u), NVML_SUCCESS);
  ASSERT_EQ_INT(u.gpu, 0);
  ASSERT_EQ_INT(nvmlDeviceGetProcessUtilization(dev_at(0), NULL, &count, 0), NVML_ERROR_NOT_FOUND);
  /* Once dead it has no samples; the device goes quiet when the work it
   * had queued and the last second have passed. */
  kill_and_reap(p);
  ASSERT_EQ_INT(nvmlDeviceGetProcessUtilization(d1, NULL, &count, 0), NVML_ERROR_NOT_FOUND);
  VGP_WAIT_UNTIL(nvmlDeviceGetUtilizationRates(d1, &u) == NVML_SUCCESS && u.gpu == 0 &&
                     u.memory == 0, 10000);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
}

/* -------------------------------------------------------------- topology */

VGP_TEST(topology_affinity_and_nvlink) {
  use_node("4xH100-80GB,1xT4");
  ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
  nvmlDevice_t d[5];
  for (unsigned i = 0; i < 5; i++)
    d[i] = dev_at(i);

  /* Defaults: devices 0-1 on NUMA node 0, 2-4 on node 1 (halves of 5). */
  nvmlGpuTopologyLevel_t level;
  ASSERT_EQ_INT(nvmlDeviceGetTopologyCommonAncestor(d[0], d[1], &level), NVML_SUCCESS);
  ASSERT_EQ_INT(level, NVML_TOPOLOGY_NODE);
  ASSERT_EQ_INT(nvmlDeviceGetTopologyCommonAncestor(d[0], d[2], &level), NVML_SUCCESS);
  ASSERT_EQ_INT(level, NVML_TOPOLOGY_SYSTEM);
  ASSERT_EQ_INT(nvmlDeviceGetTopologyCommonAncestor(d[0], NULL, &level), NVML_ERROR_INVALID_ARGUMENT);
  unsigned count = 0;
  nvmlDevice_t near[5];
  ASSERT_EQ_INT(nvmlDeviceGetTopologyNearestGpus(d[2], NVML_TOPOLOGY_NODE, &count, NULL), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 2);
  ASSERT_EQ_INT(nvmlDeviceGetTopologyNearestGpus(d[2], NVML_TOPOLOGY_NODE, &count, near), NVML_SUCCESS);
  ASSERT_EQ_PTR(near[0], d[3]);
  ASSERT_EQ_PTR(near[1], d[4]);
  count = 0;
  ASSERT_EQ_INT(nvmlDeviceGetTopologyNearestGpus(d[2], NVML_TOPOLOGY_SYSTEM, &count, NULL), NVML_SUCCESS);
  ASSERT_EQ_INT(count, 4);
  ASSERT_EQ_INT(nvmlDeviceGetTopologyNearestGpus(d[2], (nvmlGpuTopologyLevel_t)15, &count, NULL),
                NVML_ERROR_INVALID_ARGUMENT);

  /* NUMA: memory affinity names the node; CPU sets of different nodes are
   * disjoint (given two CPUs to split) and within the online CPUs. */
  unsigned long nodes[2] = {7, 7}, cpus0[16], cpus2[16];
  ASSERT_EQ_INT(nvmlDeviceGetMemoryAffinity(d[2], 2, nodes, NVML_AFFINITY_SCOPE_NODE), NVML_SUCCESS);
  ASSERT_EQ_U64(nodes[0], 2);
  ASSERT_EQ_U64(nodes[1], 0);
  ASSERT_EQ_INT(nvmlDeviceGetMemoryAffinity(d[0], 1, nodes, 7), NVML_ERROR_INVALID_ARGUMENT);
  unsigned numa = 77;
  ASSERT_EQ_INT(nvmlDeviceGetNumaNodeId(d[0], &numa), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(numa, 77);
  ASSERT_EQ_INT(nvmlDeviceGetCpuAffinity(d[0], 16, cpus0), NVML_SUCCESS);
  ASSERT_EQ_INT(nvmlDeviceGetCpuAffinityWithinScope(d[2], 16, cpus2, NVML_AFFINITY_SCOPE_SOCKET), NVML_SUCCESS);
  ASSERT_EQ_INT(nvmlDeviceGetCpuAffinity(d[0], 0, cpus0), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetCpuAffinity(d[0], 16, NULL), NVML_ERROR_INVALID_ARGUMENT);
  int n0 = 0, n2 = 0, overlap = 0, first_cpu = -1;
  for (int w = 0; w < 16; w++) {
    n0 += __builtin_popcountl(cpus0[w]);
    n2 += __builtin_popcountl(cpus2[w]);
    overlap += __builtin_popcountl(cpus0[w] & cpus2[w]);
    if (first_cpu < 0 && cpus0[w])
      first_cpu = w * 64 + __builtin_ctzl(cpus0[w]);
  }
  ASSERT_GT_INT(n0, 0);
  ASSERT_GT_INT(n2, 0);
  if (sysconf(_SC_NPROCESSORS_ONLN) >= 2)
    ASSERT_EQ_INT(overlap, 0);
  ASSERT_LE_INT(n0 + n2, sysconf(_SC_NPROCESSORS_ONLN) + overlap);
  count = 0;
  ASSERT_EQ_INT(nvmlSystemGetTopologyGpuSet((unsigned)first_cpu, &count, NULL), NVML_SUCCESS);
  ASSERT_GE_INT(count, 2);
  ASSERT_EQ_INT(nvmlSystemGetTopologyGpuSet(4095, &count, NULL), NVML_ERROR_INVALID_ARGUMENT);

  /* Peer to peer: access between any two devices, NVLink and atomics
   * among the H100 SXM boards only, never with itself. */
  nvmlGpuP2PStatus_t st;
  ASSERT_EQ_INT(nvmlDeviceGetP2PStatus(d[0], d[3], NVML_P2P_CAPS_INDEX_NVLINK, &st), NVML_SUCCESS);
  ASSERT_EQ_INT(st, NVML_P2P_STATUS_OK);
  ASSERT_EQ_INT(nvmlDeviceGetP2PStatus(d[0], d[4], NVML_P2P_CAPS_INDEX_NVLINK, &st), NVML_SUCCESS);
  ASSERT_EQ_INT(st, NVML_P2P_STATUS_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlDeviceGetP2PStatus(d[0], d[4], NVML_P2P_CAPS_INDEX_ATOMICS, &st), NVML_SUCCESS);
  ASSERT_EQ_INT(st, NVML_P2P_STATUS_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlDeviceGetP2PStatus(d[0], d[4], NVML_P2P_CAPS_INDEX_READ, &st), NVML_SUCCESS);
  ASSERT_EQ_INT(st, NVML_P2P_STATUS_OK);
  ASSERT_EQ_INT(nvmlDeviceGetP2PStatus(d[0], d[0], NVML_P2P_CAPS_INDEX_READ, &st), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetP2PStatus(d[0], d[1], NVML_P2P_CAPS_INDEX_UNKNOWN, &st), NVML_ERROR_INVALID_ARGUMENT);

  /* Four SXM boards linked all-to-all need more than an H100's 18 links:
   * an NVSwitch board. Every link is active and ends at a switch. */
  nvmlEnableState_t active;
  nvmlIntNvLinkDeviceType_t type;
  nvmlPciInfo_t pci;
  unsigned v;
  for (unsigned link = 0; link < 18; link++) {
    ASSERT_EQ_INT(nvmlDeviceGetNvLinkState(d[0], link, &active), NVML_SUCCESS);
    ASSERT_EQ_INT(active, NVML_FEATURE_ENABLED);
    ASSERT_EQ_INT(nvmlDeviceGetNvLinkRemoteDeviceType(d[0], link, &type), NVML_SUCCESS);
    ASSERT_EQ_INT(type, NVML_NVLINK_DEVICE_TYPE_SWITCH);
  }
  ASSERT_EQ_INT(nvmlDeviceGetNvLinkRemotePciInfo_v2(d[0], 0, &pci), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlDeviceGetNvLinkState(d[0], 18, &active), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetNvLinkState(d[0], NVML_NVLINK_MAX_LINKS, &active), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetNvLinkVersion(d[0], 3, &v), NVML_SUCCESS);
  ASSERT_EQ_INT(v, NVML_NVLINK_VERSION_4_0);
  ASSERT_EQ_INT(nvmlDeviceGetNvLinkCapability(d[0], 3, NVML_NVLINK_CAP_P2P_SUPPORTED, &v), NVML_SUCCESS);
  ASSERT_EQ_INT(v, 1);
  ASSERT_EQ_INT(nvmlDeviceGetNvLinkCapability(d[0], 3, NVML_NVLINK_CAP_SYSMEM_ACCESS, &v), NVML_SUCCESS);
  ASSERT_EQ_INT(v, 0);
  ASSERT_EQ_INT(nvmlDeviceGetNvLinkCapability(d[0], 3, NVML_NVLINK_CAP_COUNT, &v), NVML_ERROR_INVALID_ARGUMENT);
  /* A T4 has no NVLink. */
  ASSERT_EQ_INT(nvmlDeviceGetNvLinkState(d[4], 0, &active), NVML_ERROR_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
}

VGP_TEST(direct_nvlink_reports_its_peer) {
  char path[1024], state[1024];
  snprintf(path, sizeof(path), "%s/node.conf", vgp_test_tmpdir());
  snprintf(state, sizeof(state), "%s/node.state", vgp_test_tmpdir());
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  fprintf(f, "[device]\nmodel = H100-PCIE\nnuma_node = 0\nnvlink = 1:4\n"
             "[device]\nmodel = H100-PCIE\nnuma_node = 1\nnvlink = 0:4\n"
             "[device]\nmodel = H100-PCIE\nnuma_node = 1\n");
  fclose(f);
  setenv("VGPOOL_SIM_CONFIG", path, 1);
  setenv("VGPOOL_SIM_STATE", state, 1);
  setenv("VGPOOL_LOG", "off", 1);
  ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
  nvmlDevice_t d0 = dev_at(0), d1 = dev_at(1), d2 = dev_at(2);
  nvmlPciInfo_t peer, pci;
  nvmlEnableState_t active;
  nvmlIntNvLinkDeviceType_t type;
  ASSERT_EQ_INT(nvmlDeviceGetPciInfo_v3(d1, &peer), NVML_SUCCESS);
  for (unsigned link = 0; link < 4; link++) {
    ASSERT_EQ_INT(nvmlDeviceGetNvLinkState(d0, link, &active), NVML_SUCCESS);
    ASSERT_EQ_INT(active, NVML_FEATURE_ENABLED);
    ASSERT_EQ_INT(nvmlDeviceGetNvLinkRemotePciInfo_v2(d0, link, &pci), NVML_SUCCESS);
    ASSERT_EQ_STR(pci.busId, peer.busId);
    ASSERT_EQ_U64(pci.pciDeviceId, peer.pciDeviceId);
    ASSERT_EQ_INT(nvmlDeviceGetNvLinkRemoteDeviceType(d0, link, &type), NVML_SUCCESS);
    ASSERT_EQ_INT(type, NVML_NVLINK_DEVICE_TYPE_GPU);
  }
  ASSERT_EQ_INT(nvmlDeviceGetNvLinkState(d0, 4, &active), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetNvLinkState(d2, 0, &active), NVML_ERROR_NOT_SUPPORTED);
  nvmlGpuTopologyLevel_t level;
  ASSERT_EQ_INT(nvmlDeviceGetTopologyCommonAncestor(d0, d1, &level), NVML_SUCCESS);
  ASSERT_EQ_INT(level, NVML_TOPOLOGY_SYSTEM);
  ASSERT_EQ_INT(nvmlDeviceGetTopologyCommonAncestor(d1, d2, &level), NVML_SUCCESS);
  ASSERT_EQ_INT(level, NVML_TOPOLOGY_NODE);
  nvmlGpuP2PStatus_t st;
  ASSERT_EQ_INT(nvmlDeviceGetP2PStatus(d1, d0, NVML_P2P_CAPS_INDEX_NVLINK, &st), NVML_SUCCESS);
  ASSERT_EQ_INT(st, NVML_P2P_STATUS_OK);
  ASSERT_EQ_INT(nvmlDeviceGetP2PStatus(d1, d2, NVML_P2P_CAPS_INDEX_NVLINK, &st), NVML_SUCCESS);
  ASSERT_EQ_INT(st, NVML_P2P_STATUS_NOT_SUPPORTED);
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
}

/* ------------------------------------------------------------ bad input */

VGP_TEST(invalid_handles_and_pointers) {
  use_node("1xH100-80GB");
  ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
  nvmlDevice_t good = dev_at(0);
  /* NULL, garbage, misaligned, and a handle of a device this node lacks:
   * all refused without being dereferenced. */
  nvmlDevice_t bad[] = {NULL, (nvmlDevice_t)(uintptr_t)0x1234,
                        (nvmlDevice_t)((char *)good + 1), (nvmlDevice_t)((char *)good + 4),
                        (nvmlDevice_t)((char *)good - 4),
                        (nvmlDevice_t)(uintptr_t)-8};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char buf[96];
    unsigned v = 5;
    nvmlMemory_t m;
    nvmlUtilization_t u;
    nvmlPciInfo_t pci;
    nvmlGpuTopologyLevel_t level;
    unsigned long mask;
    ASSERT_EQ_INT(nvmlDeviceGetName(bad[i], buf, sizeof(buf)), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ_INT(nvmlDeviceGetUUID(bad[i], buf, sizeof(buf)), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ_INT(nvmlDeviceGetIndex(bad[i], &v), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ_INT(nvmlDeviceGetMemoryInfo(bad[i], &m), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ_INT(nvmlDeviceGetUtilizationRates(bad[i], &u), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ_INT(nvmlDeviceGetPciInfo_v3(bad[i], &pci), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ_INT(nvmlDeviceGetComputeRunningProcesses_v3(bad[i], &v, NULL), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ_INT(nvmlDeviceGetProcessUtilization(bad[i], NULL, &v, 0), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ_INT(nvmlDeviceGetTopologyCommonAncestor(bad[i], good, &level), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ_INT(nvmlDeviceGetCpuAffinity(bad[i], 1, &mask), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ_INT(nvmlDeviceGetTemperature(bad[i], NVML_TEMPERATURE_GPU, &v), NVML_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ_INT(v, 5);
  }
  ASSERT_EQ_INT(nvmlDeviceGetUtilizationRates(good, NULL), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetPciInfo_v3(good, NULL), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetName(good, NULL, 64), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetIndex(good, NULL), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ_INT(nvmlDeviceGetProcessesUtilizationInfo(good, NULL), NVML_ERROR_INVALID_ARGUMENT);

  ASSERT_EQ_STR(nvmlErrorString(NVML_SUCCESS), "Success");
  ASSERT_EQ_STR(nvmlErrorString(NVML_ERROR_NOT_SUPPORTED), "Not Supported");
  ASSERT_EQ_STR(nvmlErrorString(NVML_ERROR_INSUFFICIENT_SIZE), "Insufficient Size");
  ASSERT_EQ_STR(nvmlErrorString((nvmlReturn_t)12345), "Unknown Error");
  ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
}

static void write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_TRUE(fd >= 0);
  ASSERT_EQ_INT(write(fd, data, len), (long long)len);
  close(fd);
}

static char *read_log(const char *path) {
  static char buf[8192];
  buf[0] = '\0';
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return buf;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  buf[n > 0 ? n : 0] = '\0';
  close(fd);
  return buf;
}

/* Runs nvmlInit_v2 in a helper with the current environment; returns its
 * result and leaves the log it wrote in *ret_log. */
static int init_in_helper(const char *log, char **ret_log) {
  unlink(log);
  setenv("VGPOOL_LOG_FILE", log, 1);
  pid_t pid = vgp_test_spawn("nvml_init", NULL);
  int r = vgp_test_wait(pid);
  *ret_log = read_log(log);
  return r;
}

VGP_TEST(bad_spec_config_or_state_file_fail_init) {
  char state[1024], log[1024], conf[1024];
  char *text;
  snprintf(state, sizeof(state), "%s/node.state", vgp_test_tmpdir());
  snprintf(log, sizeof(log), "%s/log", vgp_test_tmpdir());
  snprintf(conf, sizeof(conf), "%s/node.conf", vgp_test_tmpdir());
  setenv("VGPOOL_SIM_STATE", state, 1);
  unsetenv("VGPOOL_SIM_CONFIG");
  setenv("VGPOOL_LOG", "error", 1);

  /* A malformed spec names the bad token. */
  setenv("VGPOOL_SIM_DEVICES", "2xH100-80G", 1);
  ASSERT_EQ_INT(init_in_helper(log, &text), NVML_ERROR_DRIVER_NOT_LOADED);
  ASSERT_CONTAINS(text, "\"H100-80G\"");
  ASSERT_CONTAINS(text, "nvmlInit_v2");
  setenv("VGPOOL_SIM_DEVICES", "2xH100-80GB,,1xT4", 1);
  ASSERT_EQ_INT(init_in_helper(log, &text), NVML_ERROR_DRIVER_NOT_LOADED);
  setenv("VGPOOL_SIM_DEVICES", "99xT4", 1);
  ASSERT_EQ_INT(init_in_helper(log, &text), NVML_ERROR_DRIVER_NOT_LOADED);
  ASSERT_CONTAINS(text, "99xT4");
  /* Silent when asked to be. */
  setenv("VGPOOL_LOG", "off", 1);
  ASSERT_EQ_INT(init_in_helper(log, &text), NVML_ERROR_DRIVER_NOT_LOADED);
  ASSERT_EQ_STR(text, "");
  setenv("VGPOOL_LOG", "error", 1);

  /* A bad config file names the file, the line and the key. */
  const char bad_conf[] = "[device]\nmodel = T4\nmemroy = 8GiB\n";
  write_file(conf, bad_conf, sizeof(bad_conf) - 1);
  setenv("VGPOOL_SIM_CONFIG", conf, 1);
  ASSERT_EQ_INT(init_in_helper(log, &text), NVML_ERROR_DRIVER_NOT_LOADED);
  ASSERT_CONTAINS(text, "node.conf:3");
  ASSERT_CONTAINS(text, "\"memroy\"");
  unlink(conf);
  ASSERT_EQ_INT(init_in_helper(log, &text), NVML_ERROR_DRIVER_NOT_LOADED);
  ASSERT_CONTAINS(text, "node.conf");
  unsetenv("VGPOOL_SIM_CONFIG");
  ASSERT_EQ_INT(access(state, F_OK), -1); /* nothing was created */

  /* A foreign file where the state should be. */
  setenv("VGPOOL_SIM_DEVICES", "1xT4", 1);
  char junk[8192];
  memset(junk, 'j', sizeof(junk));
  write_file(state, junk, sizeof(junk));
  ASSERT_EQ_INT(init_in_helper(log, &text), NVML_ERROR_DRIVER_NOT_LOADED);
  ASSERT_CONTAINS(text, state);
  ASSERT_CONTAINS(text, "foreign");

  /* A node file of another layout version: the driver/library mismatch. */
  struct vgp__shm_header hdr;
  memset(&hdr, 0, sizeof(hdr));
  hdr.magic = VGP_SIM_MAGIC;
  hdr.version = VGP_SIM_VERSION + 1;
  hdr.header_size = sizeof(hdr);
  hdr.total_size = sizeof(struct vgp_sim_node);
  write_file(state, &hdr, sizeof(hdr));
  ASSERT_EQ_INT(truncate(state, (off_t)sizeof(struct vgp_sim_node)), 0);
  ASSERT_EQ_INT(init_in_helper(log, &text), NVML_ERROR_LIB_RM_VERSION_MISMATCH);
  ASSERT_CONTAINS(text, "version");

  /* A truncated node file. */
  unlink(state);
  ASSERT_EQ_INT(init_in_helper(log, &text), NVML_SUCCESS);
  ASSERT_EQ_INT(truncate(state, (off_t)sizeof(struct vgp_sim_node) / 2), 0);
  ASSERT_EQ_INT(init_in_helper(log, &text), NVML_ERROR_DRIVER_NOT_LOADED);
  ASSERT_CONTAINS(text, "truncated");

  /* A node made for other devices than the environment names. */
  unlink(state);
  ASSERT_EQ_INT(init_in_helper(log, &text), NVML_SUCCESS);
  setenv("VGPOOL_SIM_DEVICES", "2xT4", 1);
  ASSERT_EQ_INT(init_in_helper(log, &text), NVML_ERROR_DRIVER_NOT_LOADED);
  ASSERT_CONTAINS(text, "vgpool sim reset");

  /* Once the problem is fixed, nvmlInit in the same process succeeds. */
  unlink(log);
  pid_t pid = vgp_test_spawn("nvml_init", "retry", "2xT4", NULL);
  ASSERT_EQ_INT(vgp_test_wait(pid), NVML_SUCCESS);
}

/* ---------------------------------------------------------- concurrency */

static volatile int stop_threads;

static void *query_loop(void *arg) {
  long bad = 0;
  (void)arg;
  while (!__atomic_load_n(&stop_threads, __ATOMIC_RELAXED)) {
    unsigned count = 0;
    nvmlDevice_t d;
    nvmlMemory_t m;
    nvmlUtilization_t u;
    nvmlReturn_t r = nvmlDeviceGetCount_v2(&count);
    if (r != NVML_SUCCESS && r != NVML_ERROR_UNINITIALIZED)
      bad++;
    if (nvmlDeviceGetHandleByIndex_v2(0, &d) != NVML_SUCCESS)
      continue;
    r = nvmlDeviceGetMemoryInfo(d, &m);
    if (r == NVML_SUCCESS && m.total != 15360 * MiB)
      bad++;
    r = nvmlDeviceGetUtilizationRates(d, &u);
    if (r != NVML_SUCCESS && r != NVML_ERROR_UNINITIALIZED)
      bad++;
    count = 0;
    r = nvmlDeviceGetComputeRunningProcesses_v3(d, &count, NULL);
    if (r != NVML_SUCCESS && r != NVML_ERROR_INSUFFICIENT_SIZE && r != NVML_ERROR_UNINITIALIZED)
      bad++;
  }
  return (void *)bad;
}

VGP_TEST(queries_race_init_and_shutdown_safely) {
  use_node("1xT4");
  pid_t p = vgp_test_spawn("hold", "0:64:1", NULL);
  pthread_t threads[4];
  for (int i = 0; i < 4; i++)
    ASSERT_OK(pthread_create(&threads[i], NULL, query_loop, NULL));
  for (int i = 0; i < 300; i++) {
    ASSERT_EQ_INT(nvmlInit_v2(), NVML_SUCCESS);
    ASSERT_EQ_INT(nvmlShutdown(), NVML_SUCCESS);
  }
  __atomic_store_n(&stop_threads, 1, __ATOMIC_RELAXED);
  for (int i = 0; i < 4; i++) {
    void *bad;
    ASSERT_OK(pthread_join(threads[i], &bad));
    ASSERT_EQ_INT((long)bad, 0);
  }
  kill_and_reap(p);
}

/* ----------------------------------------------------------------- ABI */

VGP_TEST(every_listed_entry_point_is_exported) {
  static const char *const names[] = {
#define VGP_NVML_PROC(symbol, params) #symbol,
#define VGP_NVML_PROC_RET(type, symbol, params) #symbol,
#include "vgpool_nvml_procs.def"
#undef VGP_NVML_PROC
#undef VGP_NVML_PROC_RET
  };
  char path[4096];
  snprintf(path, sizeof(path), "%s/src/sim/libnvidia-ml.so.1", vgp_test_build_dir());
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL)
    vgp_test_fail(__FILE__, __LINE__, "dlopen %s: %s", path, dlerror());
  ASSERT_GT_INT(sizeof(names) / sizeof(names[0]), 60);
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (dlsym(lib, names[i]) == NULL)
      vgp_test_fail(__FILE__, __LINE__, "%s is not exported", names[i]);
  /* Internals stay hidden. */
  ASSERT_NULL(dlsym(lib, "vgp_sim_open"));
  ASSERT_NULL(dlsym(lib, "vgp__nvml_begin"));
  ASSERT_NULL(dlsym(lib, "vgp__log"));
  /* Every pointer type matches the library's definition. */
  vgp_pfn_nvmlDeviceGetProcessUtilization pu = nvmlDeviceGetProcessUtilization;
  vgp_pfn_nvmlErrorString es = nvmlErrorString;
  ASSERT_NOT_NULL((void *)pu);
  ASSERT_NOT_NULL((void *)es);
  dlclose(lib);
}
