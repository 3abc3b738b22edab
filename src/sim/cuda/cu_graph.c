/*
 * cu_graph.c - CUDA graphs in the simulated driver: building graphs of
 * kernel nodes directly or by stream capture, instantiating and launching
 * them.
 *
 * The simulator supports the part of the graph API that carries kernels,
 * which is what graph users (PyTorch's CUDA graphs, for one) launch: a
 * graph is a list of kernel nodes kept in insertion order, which is always
 * a valid topological order because a node can only depend on nodes that
 * already exist. Launching an executable graph queues its kernels on the
 * stream, where they take device time like any other kernels.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cu_internal.h"

#define VGP_GRAPH_MAX_NODES 4096

struct vgp__graph_node {
  uint32_t kind;
  struct vgp__graph *graph;
  struct vgp__kernel_args kernel;
};

struct vgp__graph {
  uint32_t kind;
  int device;
  int nnodes;
  struct vgp__graph_node *nodes[VGP_GRAPH_MAX_NODES];
};

struct vgp__graph_exec {
  uint32_t kind;
  int device;
  int nnodes;
  struct vgp__kernel_args *kernels;
};

static struct vgp__graph *vgp__graph_new(int device) {
  struct vgp__graph *g = vgp__calloc(1, sizeof(*g));
  if (g == NULL)
    return NULL;
  g->kind = VGP_CU_GRAPH;
  g->device = device;
  if (vgp__handle_add(g, VGP_CU_GRAPH) < 0) {
    vgp__free(g);
    return NULL;
  }
  return g;
}

static CUresult vgp__graph_add(struct vgp__graph *g, const struct vgp__kernel_args *k,
                               struct vgp__graph_node **ret) {
  if (g->nnodes >= VGP_GRAPH_MAX_NODES)
    return CUDA_ERROR_OUT_OF_MEMORY;
  struct vgp__graph_node *n = vgp__calloc(1, sizeof(*n));
  if (n == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  n->kind = VGP_CU_GRAPH_NODE;
  n->graph = g;
  n->kernel = *k;
  if (vgp__handle_add(n, VGP_CU_GRAPH_NODE) < 0) {
    vgp__free(n);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  g->nodes[g->nnodes++] = n;
  if (ret != NULL)
    *ret = n;
  return CUDA_SUCCESS;
}

static void vgp__graph_free(struct vgp__graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    vgp__handle_remove(g->nodes[i]);
    vgp__free(g->nodes[i]);
  }
  vgp__handle_remove(g);
  vgp__free(g);
}

CUresult vgp__capture_kernel(struct vgp__stream *s, const struct vgp__kernel_args *k) {
  return vgp__graph_add(s->capture, k, NULL);
}

VGP_EXPORT CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (phGraph == NULL || flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__graph *g = vgp__graph_new(ctx->device);
  if (g == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  *phGraph = (CUgraph)g;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuGraphDestroy(CUgraph hGraph) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hGraph, VGP_CU_GRAPH))
    return CUDA_ERROR_INVALID_VALUE;
  vgp__graph_free((struct vgp__graph *)hGraph);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuGraphAddKernelNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph,
                                            const CUgraphNode *dependencies, size_t numDependencies,
                                            const CUDA_KERNEL_NODE_PARAMS *nodeParams) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (phGraphNode == NULL || nodeParams == NULL || (numDependencies > 0 && dependencies == NULL))
    return CUDA_ERROR_INVALID_VALUE;
  if (!vgp__handle_is(hGraph, VGP_CU_GRAPH))
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__graph *g = (struct vgp__graph *)hGraph;
  for (size_t i = 0; i < numDependencies; i++)
    if (!vgp__handle_is(dependencies[i], VGP_CU_GRAPH_NODE) ||
        ((struct vgp__graph_node *)dependencies[i])->graph != g)
      return CUDA_ERROR_INVALID_VALUE;
  if (nodeParams->kern != NULL)
    return CUDA_ERROR_NOT_SUPPORTED; /* library kernels are not modelled */
  if (!vgp__handle_is(nodeParams->func, VGP_CU_FUNC))
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__func *f = (struct vgp__func *)nodeParams->func;
  struct vgp__kernel_args k;
  r = vgp__kernel_prepare(f, nodeParams->gridDimX, nodeParams->gridDimY, nodeParams->gridDimZ,
                          nodeParams->blockDimX, nodeParams->blockDimY, nodeParams->blockDimZ,
                          nodeParams->kernelParams, nodeParams->extra, &k, f->module->ctx->device);
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__graph_node *n;
  r = vgp__graph_add(g, &k, &n);
  if (r == CUDA_SUCCESS)
    *phGraphNode = (CUgraphNode)n;
  return r;
}

VGP_EXPORT CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (numNodes == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (!vgp__handle_is(hGraph, VGP_CU_GRAPH))
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__graph *g = (struct vgp__graph *)hGraph;
  if (nodes != NULL) {
    size_t n = *numNodes < (size_t)g->nnodes ? *numNodes : (size_t)g->nnodes;
    for (size_t i = 0; i < n; i++)
      nodes[i] = (CUgraphNode)g->nodes[i];
  }
  *numNodes = (size_t)g->nnodes;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                unsigned long long flags) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  const unsigned long long known = CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH |
                                   CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD |
                                   CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY;
  if (phGraphExec == NULL || (flags & ~known) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (!vgp__handle_is(hGraph, VGP_CU_GRAPH))
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__graph *g = (struct vgp__graph *)hGraph;
  struct vgp__graph_exec *e = vgp__calloc(1, sizeof(*e));
  if (e == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  e->kind = VGP_CU_GRAPH_EXEC;
  e->device = g->device;
  e->nnodes = g->nnodes;
  e->kernels = vgp__calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof(*e->kernels));
  if (e->kernels == NULL || vgp__handle_add(e, VGP_CU_GRAPH_EXEC) < 0) {
    vgp__free(e->kernels);
    vgp__free(e);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  for (int i = 0; i < g->nnodes; i++)
    e->kernels[i] = g->nodes[i]->kernel;
  *phGraphExec = (CUgraphExec)e;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuGraphExecDestroy(CUgraphExec hGraphExec) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hGraphExec, VGP_CU_GRAPH_EXEC))
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__graph_exec *e = (struct vgp__graph_exec *)hGraphExec;
  vgp__handle_remove(e);
  vgp__free(e->kernels);
  vgp__free(e);
  return CUDA_SUCCESS;
}

static CUresult vgp__graph_exec_stream(CUgraphExec hGraphExec, CUstream hStream, int per_thread,
                                       struct vgp__graph_exec **ret_e, struct vgp__stream **ret_s) {
  CUresult r = vgp__stream_resolve(hStream, per_thread, ret_s);
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hGraphExec, VGP_CU_GRAPH_EXEC))
    return CUDA_ERROR_INVALID_VALUE;
  *ret_e = (struct vgp__graph_exec *)hGraphExec;
  if ((*ret_e)->device != (*ret_s)->ctx->device)
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

static CUresult vgp__graph_launch(CUgraphExec hGraphExec, CUstream hStream, int per_thread) {
  struct vgp__graph_exec *e;
  struct vgp__stream *s;
  CUresult r = vgp__graph_exec_stream(hGraphExec, hStream, per_thread, &e, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (s->capture != NULL)
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  for (int i = 0; i < e->nnodes && r == CUDA_SUCCESS; i++) {
    struct vgp__op op = {.kind = VGP_OP_KERNEL};
    op.u.kernel = e->kernels[i];
    r = vgp__enqueue(s, &op);
  }
  return r;
}

VGP_EXPORT CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
  return vgp__graph_launch(hGraphExec, hStream, 0);
}

VGP_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream) {
  return vgp__graph_launch(hGraphExec, hStream, 1);
}

VGP_EXPORT CUresult cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream) {
  struct vgp__graph_exec *e;
  struct vgp__stream *s;
  return vgp__graph_exec_stream(hGraphExec, hStream, 0, &e, &s);
}

VGP_EXPORT CUresult cuGraphUpload_ptsz(CUgraphExec hGraphExec, CUstream hStream) {
  struct vgp__graph_exec *e;
  struct vgp__stream *s;
  return vgp__graph_exec_stream(hGraphExec, hStream, 1, &e, &s);
}

/* ---------------------------------------------------------------- capture */

static CUresult vgp__begin_capture(CUstream hStream, CUstreamCaptureMode mode, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      mode != CU_STREAM_CAPTURE_MODE_RELAXED)
    return CUDA_ERROR_INVALID_VALUE;
  /* The legacy stream synchronizes with everything and cannot capture. */
  if (s->is_null)
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (s->capture != NULL)
    return CUDA_ERROR_ILLEGAL_STATE;
  struct vgp__graph *g = vgp__graph_new(s->ctx->device);
  if (g == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  s->capture_mode = (int)mode;
  s->capture_id = vgp__cu_next_id();
  s->capture = g;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
  return vgp__begin_capture(hStream, mode, 0);
}

VGP_EXPORT CUresult cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode) {
  return vgp__begin_capture(hStream, mode, 1);
}

static CUresult vgp__end_capture(CUstream hStream, CUgraph *phGraph, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (phGraph == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (s->capture == NULL)
    return CUDA_ERROR_ILLEGAL_STATE;
  *phGraph = (CUgraph)s->capture;
  s->capture = NULL;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph) {
  return vgp__end_capture(hStream, phGraph, 0);
}

VGP_EXPORT CUresult cuStreamEndCapture_ptsz(CUstream hStream, CUgraph *phGraph) {
  return vgp__end_capture(hStream, phGraph, 1);
}

static CUresult vgp__is_capturing(CUstream hStream, CUstreamCaptureStatus *status, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (status == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *status = s->capture ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus) {
  return vgp__is_capturing(hStream, captureStatus, 0);
}

VGP_EXPORT CUresult cuStreamIsCapturing_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus) {
  return vgp__is_capturing(hStream, captureStatus, 1);
}

/* The original capture entry point had no mode; it captured in global
 * mode, the default of its successor. */
VGP_EXPORT CUresult cuStreamBeginCapture(CUstream hStream) {
  return vgp__begin_capture(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL, 0);
}

VGP_EXPORT CUresult cuStreamBeginCapture_ptsz(CUstream hStream) {
  return vgp__begin_capture(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL, 1);
}

/* The original node parameters lack the trailing kern and ctx members:
 * copy the smaller struct and leave those empty. */
VGP_EXPORT CUresult cuGraphAddKernelNode(CUgraphNode *phGraphNode, CUgraph hGraph,
                                         const CUgraphNode *dependencies, size_t numDependencies,
                                         const CUDA_KERNEL_NODE_PARAMS_v1 *nodeParams) {
  if (nodeParams == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS p;
  memset(&p, 0, sizeof(p));
  memcpy(&p, nodeParams, sizeof(*nodeParams));
  return cuGraphAddKernelNode_v2(phGraphNode, hGraph, dependencies, numDependencies, &p);
}
