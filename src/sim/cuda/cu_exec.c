/*
 * cu_exec.c - command queues, streams and events of the simulated driver.
 *
 * Each context has one FIFO queue shared by all of its streams and one
 * worker thread. Running commands in the order they were issued satisfies
 * every ordering CUDA promises (per-stream order, legacy default stream
 * barriers, events recorded before a wait), at the price of never running
 * two streams of one context concurrently; kernels of one device never
 * overlap on a GPU without MPS either, across processes.
 *
 * Time. The worker gives every command a virtual completion time. A kernel
 * asks the device's engine (node.h) for a slot no earlier than the later of
 * the time it was issued and the completion of the command before it, and
 * completes at start + duration; copies take bytes / bandwidth. The worker
 * publishes a command's completion (stream and event state, callbacks) when
 * the real clock reaches its virtual completion time, so synchronizing waits
 * as long as the work would take on the device, and event timestamps are
 * the exact virtual times, unaffected by how late the worker wakes.
 *
 * Look-ahead. A GPU runs queued kernels back to back; a worker that woke
 * for each kernel would leave gaps. So the worker reserves engine time for
 * queued commands up to VGP_LOOKAHEAD_NS ahead of the real clock. Two
 * processes with full queues therefore alternate on the engine in slices of
 * about that length, which is how time-slicing between contexts behaves.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "cu_internal.h"

#define VGP_LOOKAHEAD_NS (1 * VGP_NSEC_PER_MSEC)

static uint64_t vgp__max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

static void vgp__cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock,
                                 uint64_t deadline_ns) {
  struct timespec ts = vgp__ns_to_timespec(deadline_ns);
  pthread_cond_timedwait(cond, lock, &ts);
}

/* ---------------------------------------------------------------- events */

static int vgp__event_done(const struct vgp__event *ev) {
  uint64_t ticket = __atomic_load_n(&ev->ticket, __ATOMIC_ACQUIRE);
  if (ticket == 0 || ev->ctx == NULL)
    return 1;
  return __atomic_load_n(&ev->ctx->completed_ticket, __ATOMIC_ACQUIRE) >= ticket;
}

/* ---------------------------------------------------------- op execution */

/* Runs one command's effect on the device and gives it a virtual
 * completion time. Called by the worker without the context lock. */
static void vgp__exec_op(struct vgp__ctx *ctx, struct vgp__op *op) {
  uint64_t ready = vgp__max_u64(ctx->cursor_ns, op->enqueue_ns);
  int dev = ctx->device;

  switch (op->kind) {
  case VGP_OP_KERNEL: {
    if (ctx->sticky_error == CUDA_SUCCESS) {
      CUresult e = vgp__kernel_execute(&op->u.kernel);
      if (e != CUDA_SUCCESS)
        ctx->sticky_error = e;
    }
    if (ctx->sticky_error != CUDA_SUCCESS) {
      /* After a fault the context is unusable and runs nothing more. */
      op->vtime_ns = ready;
      break;
    }
    uint64_t start = vgp_sim_engine_run(&g_cu.sim, g_cu.slot, vgp__phys(dev), ready,
                                        op->u.kernel.duration_ns);
    op->vtime_ns = start + op->u.kernel.duration_ns;
    break;
  }
  case VGP_OP_COPY: {
    uint64_t bytes = op->u.copy.bytes;
    const void *src = op->u.copy.staging ? op->u.copy.staging : op->u.copy.src;
    if (op->u.copy.height > 0) {
      for (uint64_t row = 0; row < op->u.copy.height; row++)
        memmove((char *)op->u.copy.dst + row * op->u.copy.dpitch,
                (const char *)src + row * op->u.copy.spitch, op->u.copy.width);
    } else if (bytes > 0) {
      memmove(op->u.copy.dst, src, bytes);
    }
    uint64_t cost = vgp__copy_cost_ns(dev, bytes, op->u.copy.direction);
    vgp_sim_copy_account(&g_cu.sim, g_cu.slot, vgp__phys(dev), ready, cost);
    op->vtime_ns = ready + cost;
    break;
  }
  case VGP_OP_SET: {
    char *p = op->u.set.dst;
    uint64_t n = op->u.set.count;
    if (op->u.set.elem == 1) {
      memset(p, (int)(op->u.set.value & 0xff), n);
    } else if (op->u.set.elem == 2) {
      uint16_t v = (uint16_t)op->u.set.value;
      for (uint64_t i = 0; i < n; i++)
        memcpy(p + i * 2, &v, 2);
    } else {
      uint32_t v = op->u.set.value;
      for (uint64_t i = 0; i < n; i++)
        memcpy(p + i * 4, &v, 4);
    }
    uint64_t cost = vgp__copy_cost_ns(dev, n * op->u.set.elem, 0);
    vgp_sim_copy_account(&g_cu.sim, g_cu.slot, vgp__phys(dev), ready, cost);
    op->vtime_ns = ready + cost;
    break;
  }
  case VGP_OP_EVENT_WAIT: {
    struct vgp__event *ev = op->u.event.event;
    if (ev->ctx == ctx) {
      /* Commands run in queue order, so the record this wait refers to has
       * already run and the cursor is past it. */
      op->vtime_ns = ready;
      break;
    }
    /* An event of another context completes on that context's worker;
     * wait for it here (this stalls only this context, as on a GPU). */
    while (!vgp__event_done(ev))
      vgp__sleep_ns(50 * VGP_NSEC_PER_USEC);
    op->vtime_ns = vgp__max_u64(ready, ev->time_ns);
    break;
  }
  default:
    op->vtime_ns = ready;
    break;
  }
  ctx->cursor_ns = op->vtime_ns;
}

/* Publishes a command's completion. Called by the worker with the context
 * lock held; drops it around client callbacks. */
static void vgp__complete_op(struct vgp__ctx *ctx, struct vgp__op *op) {
  switch (op->kind) {
  case VGP_OP_HOST_FN:
    pthread_mutex_unlock(&ctx->lock);
    op->u.host.fn(op->u.host.user);
    pthread_mutex_lock(&ctx->lock);
    break;
  case VGP_OP_STREAM_CB:
    pthread_mutex_unlock(&ctx->lock);
    op->u.host.cb((CUstream)op->stream, ctx->sticky_error, op->u.host.user);
    pthread_mutex_lock(&ctx->lock);
    break;
  case VGP_OP_EVENT_RECORD: {
    struct vgp__event *ev = op->u.event.event;
    if (ev->time_ticket < op->ticket) {
      ev->time_ns = op->vtime_ns;
      ev->time_ticket = op->ticket;
    }
    break;
  }
  case VGP_OP_FREE_ASYNC:
    vgp__pool_free_block(op->u.free_async.ptr);
    break;
  case VGP_OP_COPY:
    vgp__free(op->u.copy.staging);
    op->u.copy.staging = NULL;
    break;
  default:
    break;
  }
  __atomic_store_n(&ctx->completed_ticket, op->ticket, __ATOMIC_RELEASE);
}

static void *vgp__worker(void *arg) {
  struct vgp__ctx *ctx = arg;
  pthread_mutex_lock(&ctx->lock);
  for (;;) {
    uint64_t now = vgp__now_ns();
    int published = 0;
    while (ctx->done_idx < ctx->exec_idx &&
           ctx->ring[ctx->done_idx % VGP_QUEUE_CAPACITY].vtime_ns <= now) {
      vgp__complete_op(ctx, &ctx->ring[ctx->done_idx % VGP_QUEUE_CAPACITY]);
      ctx->done_idx++;
      published = 1;
    }
    if (published)
      pthread_cond_broadcast(&ctx->done_cond);
    if (ctx->stopping && ctx->done_idx == ctx->enq_idx)
      break;
    if (ctx->exec_idx < ctx->enq_idx &&
        (ctx->exec_idx == ctx->done_idx || ctx->cursor_ns < now + VGP_LOOKAHEAD_NS)) {
      struct vgp__op *op = &ctx->ring[ctx->exec_idx % VGP_QUEUE_CAPACITY];
      pthread_mutex_unlock(&ctx->lock);
      vgp__exec_op(ctx, op);
      pthread_mutex_lock(&ctx->lock);
      ctx->exec_idx++;
      continue;
    }
    if (ctx->done_idx < ctx->exec_idx) {
      uint64_t deadline = ctx->ring[ctx->done_idx % VGP_QUEUE_CAPACITY].vtime_ns;
      if (ctx->exec_idx < ctx->enq_idx && ctx->cursor_ns > VGP_LOOKAHEAD_NS &&
          ctx->cursor_ns - VGP_LOOKAHEAD_NS < deadline)
        deadline = ctx->cursor_ns - VGP_LOOKAHEAD_NS;
      vgp__cond_wait_until(&ctx->work_cond, &ctx->lock, deadline);
    } else {
      pthread_cond_wait(&ctx->work_cond, &ctx->lock);
    }
  }
  pthread_mutex_unlock(&ctx->lock);
  return NULL;
}

int vgp__exec_start(struct vgp__ctx *ctx) {
  if (ctx->ring == NULL) {
    ctx->ring = vgp__calloc(VGP_QUEUE_CAPACITY, sizeof(struct vgp__op));
    if (ctx->ring == NULL)
      return -ENOMEM;
  }
  ctx->stopping = 0;
  /* The worker must never take the application's signals. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int r = pthread_create(&ctx->worker, NULL, vgp__worker, ctx);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (r != 0)
    return -r;
  ctx->worker_running = 1;
  return 0;
}

void vgp__exec_stop(struct vgp__ctx *ctx) {
  if (!ctx->worker_running)
    return;
  pthread_mutex_lock(&ctx->lock);
  ctx->stopping = 1;
  pthread_cond_signal(&ctx->work_cond);
  pthread_mutex_unlock(&ctx->lock);
  pthread_join(ctx->worker, NULL);
  ctx->worker_running = 0;
}

/* -------------------------------------------------------------- enqueue */

CUresult vgp__enqueue(struct vgp__stream *s, struct vgp__op *op) {
  struct vgp__ctx *ctx = s->ctx;
  op->stream = s;
  pthread_mutex_lock(&ctx->lock);
  if (!ctx->worker_running || ctx->stopping) {
    pthread_mutex_unlock(&ctx->lock);
    return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  }
  /* A full queue blocks the caller, as a full push buffer does. */
  while (ctx->enq_idx - ctx->done_idx >= VGP_QUEUE_CAPACITY)
    pthread_cond_wait(&ctx->done_cond, &ctx->lock);
  op->ticket = ++ctx->next_ticket;
  op->enqueue_ns = vgp__now_ns();
  op->vtime_ns = 0;
  ctx->ring[ctx->enq_idx % VGP_QUEUE_CAPACITY] = *op;
  ctx->enq_idx++;
  s->last_ticket = op->ticket;
  if (op->kind == VGP_OP_EVENT_RECORD) {
    /* The event now stands for this record: set under the queue lock so
     * that records from several threads land in queue order. */
    struct vgp__event *ev = op->u.event.event;
    ev->ctx = ctx;
    __atomic_store_n(&ev->ticket, op->ticket, __ATOMIC_RELEASE);
  }
  pthread_cond_signal(&ctx->work_cond);
  pthread_mutex_unlock(&ctx->lock);
  return CUDA_SUCCESS;
}

static CUresult vgp__wait_ticket(struct vgp__ctx *ctx, uint64_t ticket) {
  pthread_mutex_lock(&ctx->lock);
  while (ctx->completed_ticket < ticket && ctx->worker_running)
    pthread_cond_wait(&ctx->done_cond, &ctx->lock);
  CUresult r = ctx->sticky_error;
  pthread_mutex_unlock(&ctx->lock);
  return r;
}

CUresult vgp__stream_wait_idle(struct vgp__stream *s) {
  return vgp__wait_ticket(s->ctx, __atomic_load_n(&s->last_ticket, __ATOMIC_ACQUIRE));
}

CUresult vgp__ctx_wait_idle(struct vgp__ctx *ctx) {
  pthread_mutex_lock(&ctx->lock);
  uint64_t ticket = ctx->next_ticket;
  pthread_mutex_unlock(&ctx->lock);
  return vgp__wait_ticket(ctx, ticket);
}

int vgp__stream_idle(struct vgp__stream *s) {
  return __atomic_load_n(&s->ctx->completed_ticket, __ATOMIC_ACQUIRE) >=
         __atomic_load_n(&s->last_ticket, __ATOMIC_ACQUIRE);
}

/* -------------------------------------------------------------- streams */

struct vgp__stream *vgp__stream_new(struct vgp__ctx *ctx, unsigned flags,
                                    int priority) {
  struct vgp__stream *s = vgp__calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->kind = VGP_CU_STREAM;
  s->ctx = ctx;
  s->flags = flags;
  s->priority = priority;
  s->id = vgp__cu_next_id();
  if (vgp__handle_add(s, VGP_CU_STREAM) < 0) {
    vgp__free(s);
    return NULL;
  }
  return s;
}

void vgp__stream_free(struct vgp__stream *s) {
  if (s == NULL)
    return;
  vgp__handle_remove(s);
  /* Commands still queued point at the stream; wait for them first (the
   * driver releases a busy stream once its work is done). */
  if (s->ctx->worker_running)
    vgp__stream_wait_idle(s);
  vgp__free(s);
}

/* Resolves a client stream handle: NULL and CU_STREAM_LEGACY are the
 * current context's legacy stream (or, for the per-thread entry points,
 * NULL is the per-thread stream); CU_STREAM_PER_THREAD is the calling
 * thread's stream. */
CUresult vgp__stream_resolve(CUstream handle, int per_thread,
                             struct vgp__stream **ret_stream) {
  struct vgp__ctx *ctx;
  if (handle == NULL || handle == CU_STREAM_LEGACY || handle == CU_STREAM_PER_THREAD) {
    CUresult r = vgp__ctx_current(&ctx);
    if (r != CUDA_SUCCESS)
      return r;
    if (handle == CU_STREAM_PER_THREAD || (handle == NULL && per_thread)) {
      struct vgp__stream *s = vgp__thread_stream(ctx);
      if (s == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
      *ret_stream = s;
    } else {
      *ret_stream = ctx->null_stream;
    }
    return CUDA_SUCCESS;
  }
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(handle, VGP_CU_STREAM))
    return CUDA_ERROR_INVALID_HANDLE;
  struct vgp__stream *s = (struct vgp__stream *)handle;
  if (!vgp__handle_is(s->ctx, VGP_CU_CTX))
    return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  *ret_stream = s;
  return CUDA_SUCCESS;
}

static CUresult vgp__stream_create(CUstream *phStream, unsigned int flags, int priority) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (phStream == NULL || (flags & ~(unsigned)CU_STREAM_NON_BLOCKING) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  /* Priorities outside [-5, 0] are clamped, as documented. */
  if (priority < -5)
    priority = -5;
  if (priority > 0)
    priority = 0;
  struct vgp__stream *s = vgp__stream_new(ctx, flags, priority);
  if (s == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  *phStream = (CUstream)s;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags) {
  return vgp__stream_create(phStream, Flags, 0);
}

VGP_EXPORT CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority) {
  return vgp__stream_create(phStream, flags, priority);
}

VGP_EXPORT CUresult cuStreamDestroy_v2(CUstream hStream) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (hStream == NULL || hStream == CU_STREAM_LEGACY || hStream == CU_STREAM_PER_THREAD ||
      !vgp__handle_is(hStream, VGP_CU_STREAM))
    return CUDA_ERROR_INVALID_HANDLE;
  struct vgp__stream *s = (struct vgp__stream *)hStream;
  if (s->is_null || s->per_thread)
    return CUDA_ERROR_INVALID_HANDLE;
  vgp__stream_free(s);
  return CUDA_SUCCESS;
}

static CUresult vgp__stream_sync(CUstream hStream, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (s->capture != NULL)
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  r = vgp__stream_wait_idle(s);
  vgp__pools_trim_on_sync(s->ctx->device);
  return r;
}

VGP_EXPORT CUresult cuStreamSynchronize(CUstream hStream) {
  return vgp__stream_sync(hStream, 0);
}

VGP_EXPORT CUresult cuStreamSynchronize_ptsz(CUstream hStream) {
  return vgp__stream_sync(hStream, 1);
}

static CUresult vgp__stream_query(CUstream hStream, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (s->ctx->sticky_error != CUDA_SUCCESS)
    return s->ctx->sticky_error;
  return vgp__stream_idle(s) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

VGP_EXPORT CUresult cuStreamQuery(CUstream hStream) { return vgp__stream_query(hStream, 0); }

VGP_EXPORT CUresult cuStreamQuery_ptsz(CUstream hStream) { return vgp__stream_query(hStream, 1); }

static CUresult vgp__stream_wait_event(CUstream hStream, CUevent hEvent,
                                       unsigned int Flags, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hEvent, VGP_CU_EVENT))
    return CUDA_ERROR_INVALID_HANDLE;
  if ((Flags & ~(unsigned)CU_EVENT_WAIT_EXTERNAL) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__event *ev = (struct vgp__event *)hEvent;
  if (ev->ticket == 0)
    return CUDA_SUCCESS; /* never recorded: nothing to wait for */
  if (s->capture != NULL)
    return CUDA_SUCCESS; /* captured work is ordered by the graph */
  struct vgp__op op = {.kind = VGP_OP_EVENT_WAIT};
  op.u.event.event = ev;
  return vgp__enqueue(s, &op);
}

VGP_EXPORT CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags) {
  return vgp__stream_wait_event(hStream, hEvent, Flags, 0);
}

VGP_EXPORT CUresult cuStreamWaitEvent_ptsz(CUstream hStream, CUevent hEvent, unsigned int Flags) {
  return vgp__stream_wait_event(hStream, hEvent, Flags, 1);
}

static CUresult vgp__stream_callback(CUstream hStream, CUhostFn fn, CUstreamCallback cb,
                                     void *user, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (fn == NULL && cb == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (s->capture != NULL)
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  struct vgp__op op = {.kind = fn ? VGP_OP_HOST_FN : VGP_OP_STREAM_CB};
  op.u.host.fn = fn;
  op.u.host.cb = cb;
  op.u.host.user = user;
  return vgp__enqueue(s, &op);
}

VGP_EXPORT CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback,
                                        void *userData, unsigned int flags) {
  if (flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  return vgp__stream_callback(hStream, NULL, callback, userData, 0);
}

VGP_EXPORT CUresult cuStreamAddCallback_ptsz(CUstream hStream, CUstreamCallback callback,
                                             void *userData, unsigned int flags) {
  if (flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  return vgp__stream_callback(hStream, NULL, callback, userData, 1);
}

VGP_EXPORT CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData) {
  return vgp__stream_callback(hStream, fn, NULL, userData, 0);
}

VGP_EXPORT CUresult cuLaunchHostFunc_ptsz(CUstream hStream, CUhostFn fn, void *userData) {
  return vgp__stream_callback(hStream, fn, NULL, userData, 1);
}

static CUresult vgp__stream_get_flags(CUstream hStream, unsigned int *flags, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (flags == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *flags = s->flags;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuStreamGetFlags(CUstream hStream, unsigned int *flags) {
  return vgp__stream_get_flags(hStream, flags, 0);
}

VGP_EXPORT CUresult cuStreamGetFlags_ptsz(CUstream hStream, unsigned int *flags) {
  return vgp__stream_get_flags(hStream, flags, 1);
}

static CUresult vgp__stream_get_priority(CUstream hStream, int *priority, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (priority == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *priority = s->priority;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuStreamGetPriority(CUstream hStream, int *priority) {
  return vgp__stream_get_priority(hStream, priority, 0);
}

VGP_EXPORT CUresult cuStreamGetPriority_ptsz(CUstream hStream, int *priority) {
  return vgp__stream_get_priority(hStream, priority, 1);
}

static CUresult vgp__stream_get_ctx(CUstream hStream, CUcontext *pctx, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (pctx == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *pctx = (CUcontext)s->ctx;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuStreamGetCtx(CUstream hStream, CUcontext *pctx) {
  return vgp__stream_get_ctx(hStream, pctx, 0);
}

VGP_EXPORT CUresult cuStreamGetCtx_ptsz(CUstream hStream, CUcontext *pctx) {
  return vgp__stream_get_ctx(hStream, pctx, 1);
}

static CUresult vgp__stream_get_id(CUstream hStream, unsigned long long *id, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (id == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *id = s->id;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuStreamGetId(CUstream hStream, unsigned long long *streamId) {
  return vgp__stream_get_id(hStream, streamId, 0);
}

VGP_EXPORT CUresult cuStreamGetId_ptsz(CUstream hStream, unsigned long long *streamId) {
  return vgp__stream_get_id(hStream, streamId, 1);
}

/* ---------------------------------------------------------------- events */

VGP_EXPORT CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  const unsigned known = CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
  if (phEvent == NULL || (Flags & ~known) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  /* Interprocess events must disable timing. */
  if ((Flags & CU_EVENT_INTERPROCESS) && !(Flags & CU_EVENT_DISABLE_TIMING))
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__event *ev = vgp__calloc(1, sizeof(*ev));
  if (ev == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  ev->kind = VGP_CU_EVENT;
  ev->flags = Flags;
  if (vgp__handle_add(ev, VGP_CU_EVENT) < 0) {
    vgp__free(ev);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *phEvent = (CUevent)ev;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuEventDestroy_v2(CUevent hEvent) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hEvent, VGP_CU_EVENT))
    return CUDA_ERROR_INVALID_HANDLE;
  struct vgp__event *ev = (struct vgp__event *)hEvent;
  vgp__handle_remove(ev);
  /* Queued records and waits still point at it; let them finish. */
  if (ev->ctx != NULL && ev->ticket != 0 && ev->ctx->worker_running)
    vgp__wait_ticket(ev->ctx, ev->ticket);
  vgp__free(ev);
  return CUDA_SUCCESS;
}

static CUresult vgp__event_record(CUevent hEvent, CUstream hStream, unsigned flags,
                                  int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hEvent, VGP_CU_EVENT))
    return CUDA_ERROR_INVALID_HANDLE;
  if ((flags & ~(unsigned)CU_EVENT_RECORD_EXTERNAL) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (s->capture != NULL)
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  struct vgp__op op = {.kind = VGP_OP_EVENT_RECORD};
  op.u.event.event = (struct vgp__event *)hEvent;
  return vgp__enqueue(s, &op);
}

VGP_EXPORT CUresult cuEventRecord(CUevent hEvent, CUstream hStream) {
  return vgp__event_record(hEvent, hStream, 0, 0);
}

VGP_EXPORT CUresult cuEventRecord_ptsz(CUevent hEvent, CUstream hStream) {
  return vgp__event_record(hEvent, hStream, 0, 1);
}

VGP_EXPORT CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags) {
  return vgp__event_record(hEvent, hStream, flags, 0);
}

VGP_EXPORT CUresult cuEventRecordWithFlags_ptsz(CUevent hEvent, CUstream hStream, unsigned int flags) {
  return vgp__event_record(hEvent, hStream, flags, 1);
}

VGP_EXPORT CUresult cuEventQuery(CUevent hEvent) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hEvent, VGP_CU_EVENT))
    return CUDA_ERROR_INVALID_HANDLE;
  return vgp__event_done((struct vgp__event *)hEvent) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

VGP_EXPORT CUresult cuEventSynchronize(CUevent hEvent) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hEvent, VGP_CU_EVENT))
    return CUDA_ERROR_INVALID_HANDLE;
  struct vgp__event *ev = (struct vgp__event *)hEvent;
  if (ev->ticket == 0 || ev->ctx == NULL)
    return CUDA_SUCCESS;
  return vgp__wait_ticket(ev->ctx, ev->ticket);
}

VGP_EXPORT CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (pMilliseconds == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (!vgp__handle_is(hStart, VGP_CU_EVENT) || !vgp__handle_is(hEnd, VGP_CU_EVENT))
    return CUDA_ERROR_INVALID_HANDLE;
  struct vgp__event *a = (struct vgp__event *)hStart, *b = (struct vgp__event *)hEnd;
  if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING)
    return CUDA_ERROR_INVALID_HANDLE;
  if (a->ticket == 0 || b->ticket == 0)
    return CUDA_ERROR_INVALID_HANDLE;
  if (!vgp__event_done(a) || !vgp__event_done(b))
    return CUDA_ERROR_NOT_READY;
  *pMilliseconds = (float)(((double)b->time_ns - (double)a->time_ns) / 1e6);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd) {
  return cuEventElapsedTime(pMilliseconds, hStart, hEnd);
}

VGP_EXPORT CUresult cuStreamGetCtx_v2(CUstream hStream, CUcontext *pctx, CUgreenCtx *pGreenCtx) {
  CUresult r = vgp__stream_get_ctx(hStream, pctx, 0);
  /* Green contexts are not modelled: a stream never belongs to one. */
  if (r == CUDA_SUCCESS && pGreenCtx != NULL)
    *pGreenCtx = NULL;
  return r;
}

VGP_EXPORT CUresult cuStreamGetCtx_v2_ptsz(CUstream hStream, CUcontext *pctx, CUgreenCtx *pGreenCtx) {
  CUresult r = vgp__stream_get_ctx(hStream, pctx, 1);
  if (r == CUDA_SUCCESS && pGreenCtx != NULL)
    *pGreenCtx = NULL;
  return r;
}

/* The original variants take the same arguments as their successors. */
VGP_EXPORT CUresult cuStreamDestroy(CUstream hStream) { return cuStreamDestroy_v2(hStream); }

VGP_EXPORT CUresult cuEventDestroy(CUevent hEvent) { return cuEventDestroy_v2(hEvent); }
