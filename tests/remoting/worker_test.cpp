// The worker as a process, attacked and broken on purpose:
//  - a client naming another client's pointers, handles or context is refused, and both go on;
//  - malformed, truncated, oversized and unauthenticated frames drop only their connection;
//  - killing the worker in the middle of a synchronous call, an asynchronous stream or a big
//    copy makes the stub fail within 2 s with CUDA_ERROR_DEVICE_UNAVAILABLE (never hang);
//  - killing a client returns the device memory it held.
// Each test starts its own worker (tensor-fusion-worker on the soft GPU) on tcp://127.0.0.1:0 or
// a fresh shm name. Raw clients speak the protocol directly; stub clients are forked children
// that dlopen() the stub libcuda.so.1.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <random>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <cuda.h>

#include "cuda/catalog.h"
#include "remoting/protocol.h"
#include "remoting/transport.h"
#include "worker_harness.h"

namespace tf::remoting {
namespace {

// The parameter: the transport, "+remap" for a worker with --remap-handles (every handle the
// client gets is a value of its own, not the driver's: the same attacks, and a handler that
// forgot to translate fails them).
class WorkerTest : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    transport_ = GetParam();
    std::vector<std::string> extra;
    if (auto plus = transport_.find("+remap"); plus != std::string::npos) {
      transport_.erase(plus);
      extra.push_back("--remap-handles");
      remapped_ = true;
    }
    worker_ = std::make_unique<WorkerProcess>(transport_, token_, extra);
    ASSERT_FALSE(worker_->address().empty()) << "worker did not start";
  }
  std::string token_ = "test-token-" + std::to_string(getpid());
  std::unique_ptr<WorkerProcess> worker_;
  std::string transport_; // "tcp" or "shm"
  bool remapped_ = false;
};

// Handles the worker gives back name the client's own values: a stream's context is the
// context the client was given, a listed node the node it added. Remapped, no handle is the
// driver's (those never have the top bit set).
TEST_P(WorkerTest, HandlesComeBackAsTheClientKnowsThem) {
  RawClient a;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctx = a.context(), stream = 0, event = 0, streamCtx = 0, graph = 0, node = 0;
  ASSERT_EQ(a.call(FnId::cuStreamCreate, {0}, ctx, &stream), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuEventCreate, {0}, ctx, &event), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuGraphCreate, {0}, ctx, &graph), CUDA_SUCCESS);
  std::string deps(4, '\0'); // no dependencies
  ASSERT_EQ(a.call(static_cast<uint32_t>(FnId::cuGraphAddEmptyNode), {graph}, ctx, &node, nullptr,
                   nullptr, deps),
            CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuStreamGetCtx, {stream}, ctx, &streamCtx), CUDA_SUCCESS);
  EXPECT_EQ(streamCtx, ctx);
  uint64_t listed[2] = {};
  std::string blob;
  ASSERT_EQ(a.call(static_cast<uint32_t>(FnId::cuGraphGetNodes), {graph, 4}, ctx, listed, nullptr,
                   nullptr, "", kFlagNone, nullptr, &blob),
            CUDA_SUCCESS);
  ASSERT_EQ(blob.size(), 8u);
  uint64_t first = 0;
  std::memcpy(&first, blob.data(), 8);
  EXPECT_EQ(first, node) << "a listed node is named as the client knows it";
  EXPECT_EQ(a.call(FnId::cuEventRecord, {event, stream}, ctx), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuStreamSynchronize, {stream}, ctx), CUDA_SUCCESS);
  // A capture's graph and its current dependencies, named as the client can use them.
  uint64_t mem = 0;
  ASSERT_EQ(a.call(FnId::cuMemAlloc_v2, {4096}, ctx, &mem), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuStreamBeginCapture_v2, {stream, CU_STREAM_CAPTURE_MODE_RELAXED}, ctx), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuMemsetD8Async, {mem, 1, 16, stream}, ctx), CUDA_SUCCESS);
  uint64_t info[3] = {};
  ASSERT_EQ(a.call(static_cast<uint32_t>(FnId::cuStreamGetCaptureInfo_v3), {stream}, ctx, info, nullptr,
                   nullptr, "", kFlagNone, nullptr, &blob),
            CUDA_SUCCESS);
  ASSERT_EQ(blob.size(), 8u) << "one dependency: the memset";
  uint64_t dep = 0, type = 0, captured = 0;
  std::memcpy(&dep, blob.data(), 8);
  EXPECT_EQ(a.call(FnId::cuGraphNodeGetType, {dep}, ctx, &type), CUDA_SUCCESS);
  EXPECT_EQ(type, uint64_t(CU_GRAPH_NODE_TYPE_MEMSET));
  ASSERT_EQ(a.call(FnId::cuStreamEndCapture, {stream}, ctx, &captured), CUDA_SUCCESS);
  EXPECT_EQ(captured, info[2]) << "the capture's graph, as named while capturing";
  EXPECT_EQ(a.call(FnId::cuGraphDestroy, {captured}, ctx), CUDA_SUCCESS);
  if (remapped_)
    for (uint64_t h : {ctx, stream, event, graph, node})
      EXPECT_NE(h >> 63, 0u) << std::hex << h << " looks like a driver's handle";
}

TEST_P(WorkerTest, AnotherClientsPointersHandlesAndContextAreRefused) {
  RawClient a, b;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  ASSERT_EQ(b.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctxA = a.context(), ctxB = b.context();
  ASSERT_NE(ctxA, ctxB); // each client gets its own context
  uint64_t pA = 0, pB = 0, sA = 0, eA = 0;
  ASSERT_EQ(a.call(FnId::cuMemAlloc_v2, {1 << 20}, ctxA, &pA), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuMemAlloc_v2, {4096}, ctxB, &pB), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuStreamCreate, {0}, ctxA, &sA), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuEventCreate, {0}, ctxA, &eA), CUDA_SUCCESS);
  std::vector<uint8_t> secret(16, 0x5a), got;
  ASSERT_EQ(a.call(FnId::cuMemcpyHtoD_v2, {pA, 16}, ctxA, nullptr, nullptr, &secret), CUDA_SUCCESS);

  // B names A's memory, inside and at an offset: refused, nothing leaks, nothing changes.
  EXPECT_EQ(b.call(FnId::cuMemcpyDtoH_v2, {pA, 16}, ctxB, nullptr, &got), CUDA_ERROR_INVALID_VALUE);
  EXPECT_TRUE(got.empty());
  std::vector<uint8_t> junk(16, 0x11);
  EXPECT_EQ(b.call(FnId::cuMemcpyHtoD_v2, {pA + 64, 16}, ctxB, nullptr, nullptr, &junk), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(b.call(FnId::cuMemsetD8_v2, {pA, 0, 16}, ctxB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(b.call(FnId::cuMemcpyDtoD_v2, {pB, pA, 16}, ctxB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(b.call(FnId::cuMemFree_v2, {pA}, ctxB), CUDA_ERROR_INVALID_VALUE);
  // Its own allocation, but past the end.
  EXPECT_EQ(b.call(FnId::cuMemcpyDtoH_v2, {pB + 4000, 200}, ctxB), CUDA_ERROR_INVALID_VALUE);
  // A's stream and event, and A's context.
  EXPECT_EQ(b.call(FnId::cuStreamSynchronize, {sA}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuStreamDestroy_v2, {sA}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuEventSynchronize, {eA}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuMemAlloc_v2, {4096}, ctxA), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(b.call(FnId::cuCtxDestroy_v2, {ctxA}, ctxB), CUDA_ERROR_INVALID_HANDLE);

  // Both go on; A's data is intact.
  EXPECT_EQ(a.call(FnId::cuMemcpyDtoH_v2, {pA, 16}, ctxA, nullptr, &got), CUDA_SUCCESS);
  EXPECT_EQ(got, secret);
  EXPECT_EQ(a.call(FnId::cuStreamSynchronize, {sA}, ctxA), CUDA_SUCCESS);
  EXPECT_EQ(b.call(FnId::cuMemFree_v2, {pB}, ctxB), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuMemFree_v2, {pA}, ctxA), CUDA_SUCCESS);
}

// The handlers generated from src/remoting/wire_calls.txt check what they are given as the
// hand-written ones did: another client's handles are refused, a frame with too few args or a
// struct of the wrong size is INVALID_VALUE, and the session goes on.
TEST_P(WorkerTest, GeneratedHandlersCheckWhatTheyAreGiven) {
  RawClient a, b;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  ASSERT_EQ(b.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctxA = a.context(), ctxB = b.context();
  uint64_t sA = 0, sB = 0, eA = 0, eB = 0, v = 0;
  ASSERT_EQ(a.call(FnId::cuStreamCreate, {0}, ctxA, &sA), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuStreamCreateWithPriority, {0, 0}, ctxB, &sB), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuEventCreate, {0}, ctxA, &eA), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuEventCreate, {0}, ctxB, &eB), CUDA_SUCCESS);

  // Another client's stream, event, function or pool.
  EXPECT_EQ(b.call(FnId::cuStreamQuery, {sA}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuStreamGetPriority, {sA}, ctxB, &v), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuStreamGetCtx, {sA}, ctxB, &v), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuStreamWaitEvent, {sB, eA, 0}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuStreamWaitEvent, {sA, eB, 0}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuEventQuery, {eA}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuFuncGetAttribute, {0, sA}, ctxB, &v), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuKernelGetFunction, {sA}, ctxB, &v), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuMemPoolTrimTo, {sA, 0}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuMemPoolDestroy, {sA}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  // Too few args: refused before anything runs.
  EXPECT_EQ(b.call(FnId::cuStreamGetPriority, {}, ctxB, &v), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(b.call(FnId::cuStreamCreateWithPriority, {0}, ctxB, &v), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(b.call(FnId::cuCtxSetLimit, {CU_LIMIT_STACK_SIZE}, ctxB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(b.call(FnId::cuKernelGetAttribute, {0, 0}, ctxB, &v), CUDA_ERROR_INVALID_VALUE);
  // A struct of the wrong size (the call's blob).
  EXPECT_EQ(b.call(static_cast<uint32_t>(FnId::cuStreamSetAttribute),
                   {sB, CU_STREAM_ATTRIBUTE_PRIORITY}, ctxB, nullptr, nullptr, nullptr, "abc"),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(b.call(static_cast<uint32_t>(FnId::cuMemPoolCreate), {}, ctxB, &v, nullptr, nullptr,
                   std::string(sizeof(CUmemPoolProps) - 1, '\0')),
            CUDA_ERROR_INVALID_VALUE);

  // Both go on: A's stream is intact, B's calls work; a destroyed stream is no longer A's.
  uint64_t flags = 1;
  EXPECT_EQ(a.call(FnId::cuStreamGetFlags, {sA}, ctxA, &flags), CUDA_SUCCESS);
  EXPECT_EQ(flags, 0u);
  EXPECT_EQ(b.call(FnId::cuStreamWaitEvent, {sB, eB, 0}, ctxB), CUDA_SUCCESS);
  EXPECT_EQ(b.call(FnId::cuStreamQuery, {sB}, ctxB), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuStreamDestroy_v2, {sA}, ctxA), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuStreamQuery, {sA}, ctxA), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(a.call(FnId::cuStreamDestroy_v2, {sA}, ctxA), CUDA_ERROR_INVALID_HANDLE);
}

// Arrays, texture and surface objects are per client too: another client cannot destroy,
// query, copy from or texture another's array, nor make a texture over another's memory.
TEST_P(WorkerTest, AnotherClientsArraysAndTexturesAreRefused) {
  RawClient a, b;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  ASSERT_EQ(b.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctxA = a.context(), ctxB = b.context();
  auto blobOf = [](const auto& v) { return std::string(reinterpret_cast<const char*>(&v), sizeof v); };
  CUDA_ARRAY3D_DESCRIPTOR desc{};
  desc.Width = 64;
  desc.Height = 4;
  desc.Format = CU_AD_FORMAT_FLOAT;
  desc.NumChannels = 1;
  desc.Flags = CUDA_ARRAY3D_SURFACE_LDST;
  uint64_t arrA = 0, arrB = 0, texA = 0, pA = 0;
  ASSERT_EQ(a.call(uint32_t(FnId::cuArray3DCreate_v2), {}, ctxA, &arrA, nullptr, nullptr, blobOf(desc)), CUDA_SUCCESS);
  ASSERT_EQ(b.call(uint32_t(FnId::cuArray3DCreate_v2), {}, ctxB, &arrB, nullptr, nullptr, blobOf(desc)), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuMemAlloc_v2, {4096}, ctxA, &pA), CUDA_SUCCESS);
  CUDA_RESOURCE_DESC res{};
  res.resType = CU_RESOURCE_TYPE_ARRAY;
  res.res.array.hArray = reinterpret_cast<CUarray>(arrA);
  CUDA_TEXTURE_DESC tex{};
  tex.filterMode = CU_TR_FILTER_MODE_POINT;
  ASSERT_EQ(a.call(uint32_t(FnId::cuTexObjectCreate), {}, ctxA, &texA, nullptr, nullptr, blobOf(res) + blobOf(tex)),
            CUDA_SUCCESS);

  // B names A's array, A's texture, A's memory as a texture.
  EXPECT_EQ(b.call(FnId::cuArrayDestroy, {arrA}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuArray3DGetDescriptor_v2, {arrA}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(uint32_t(FnId::cuTexObjectCreate), {}, ctxB, nullptr, nullptr, nullptr, blobOf(res) + blobOf(tex)),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(uint32_t(FnId::cuSurfObjectCreate), {}, ctxB, nullptr, nullptr, nullptr, blobOf(res)),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuTexObjectDestroy, {texA}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(b.call(FnId::cuTexObjectGetResourceDesc, {texA}, ctxB), CUDA_ERROR_INVALID_HANDLE);
  CUDA_RESOURCE_DESC linear{};
  linear.resType = CU_RESOURCE_TYPE_LINEAR;
  linear.res.linear.devPtr = pA;
  linear.res.linear.format = CU_AD_FORMAT_FLOAT;
  linear.res.linear.numChannels = 1;
  linear.res.linear.sizeInBytes = 4096;
  EXPECT_EQ(b.call(uint32_t(FnId::cuTexObjectCreate), {}, ctxB, nullptr, nullptr, nullptr, blobOf(linear) + blobOf(tex)),
            CUDA_ERROR_INVALID_VALUE);
  // A copy from A's array into B's own.
  CUDA_MEMCPY3D copy{};
  copy.srcMemoryType = CU_MEMORYTYPE_ARRAY;
  copy.srcArray = reinterpret_cast<CUarray>(arrA);
  copy.dstMemoryType = CU_MEMORYTYPE_ARRAY;
  copy.dstArray = reinterpret_cast<CUarray>(arrB);
  copy.WidthInBytes = 64 * sizeof(float);
  copy.Height = 4;
  copy.Depth = 1;
  EXPECT_EQ(b.call(uint32_t(FnId::cuMemcpy3D_v2), {0}, ctxB, nullptr, nullptr, nullptr, blobOf(copy)),
            CUDA_ERROR_INVALID_HANDLE);

  // Both go on with their own; a texture's resource comes back as the client knows it.
  uint64_t outs[1] = {};
  std::string got;
  EXPECT_EQ(a.call(uint32_t(FnId::cuTexObjectGetResourceDesc), {texA}, ctxA, outs, nullptr, nullptr, "",
                   kFlagNone, nullptr, &got),
            CUDA_SUCCESS);
  ASSERT_EQ(got.size(), sizeof(CUDA_RESOURCE_DESC));
  CUDA_RESOURCE_DESC back{};
  std::memcpy(&back, got.data(), sizeof back);
  EXPECT_EQ(reinterpret_cast<uint64_t>(back.res.array.hArray), arrA);
  uint64_t mip = 0, texMip = 0;
  ASSERT_EQ(a.call(uint32_t(FnId::cuMipmappedArrayCreate), {2}, ctxA, &mip, nullptr, nullptr, blobOf(desc)),
            CUDA_SUCCESS);
  CUDA_RESOURCE_DESC mipRes{};
  mipRes.resType = CU_RESOURCE_TYPE_MIPMAPPED_ARRAY;
  mipRes.res.mipmap.hMipmappedArray = reinterpret_cast<CUmipmappedArray>(mip);
  ASSERT_EQ(a.call(uint32_t(FnId::cuTexObjectCreate), {}, ctxA, &texMip, nullptr, nullptr, blobOf(mipRes) + blobOf(tex)),
            CUDA_SUCCESS);
  EXPECT_EQ(a.call(uint32_t(FnId::cuTexObjectGetResourceDesc), {texMip}, ctxA, outs, nullptr, nullptr, "",
                   kFlagNone, nullptr, &got),
            CUDA_SUCCESS);
  ASSERT_EQ(got.size(), sizeof(CUDA_RESOURCE_DESC));
  std::memcpy(&back, got.data(), sizeof back);
  EXPECT_EQ(reinterpret_cast<uint64_t>(back.res.mipmap.hMipmappedArray), mip);
  EXPECT_EQ(a.call(FnId::cuTexObjectDestroy, {texMip}, ctxA), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuMipmappedArrayDestroy, {mip}, ctxA), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuTexObjectDestroy, {texA}, ctxA), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuArrayDestroy, {arrA}, ctxA), CUDA_SUCCESS);
  EXPECT_EQ(b.call(FnId::cuArrayDestroy, {arrB}, ctxB), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuMemFree_v2, {pA}, ctxA), CUDA_SUCCESS);
}

extern const char kSpinPtx[];

// A launch must carry exactly the parameters its kernel declares: the driver would read past
// a short list.
TEST_P(WorkerTest, LaunchWithWrongParametersIsRefused) {
  RawClient c;
  ASSERT_EQ(c.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctx = c.context();
  std::vector<uint8_t> image(kSpinPtx, kSpinPtx + strlen(kSpinPtx) + 1);
  uint64_t hash = fnv1a64(image.data(), image.size());
  uint64_t mod = 0, fn = 0, out = 0;
  ASSERT_EQ(c.call(FnId::cuModuleLoadData, {hash, image.size()}, ctx, &mod, nullptr, &image), CUDA_SUCCESS);
  ASSERT_EQ(c.call(static_cast<uint32_t>(FnId::cuModuleGetFunction), {mod}, ctx, &fn, nullptr,
                   nullptr, "spin"),
            CUDA_SUCCESS);
  ASSERT_EQ(c.call(FnId::cuMemAlloc_v2, {4}, ctx, &out), CUDA_SUCCESS);
  auto launch = [&](std::vector<ParamSlot> slots, std::vector<uint8_t> params) {
    Writer w;
    encodeLaunch(w, slots.data(), static_cast<uint32_t>(slots.size()), params.data(),
                 params.size(), nullptr, 0, sizeof(CUlaunchAttribute));
    std::string blob(reinterpret_cast<const char*>(w.data()), w.size());
    return c.call(static_cast<uint32_t>(FnId::cuLaunchKernel), {fn, 1, 1, 1, 1, 1, 1, 0, 0}, ctx,
                  nullptr, nullptr, nullptr, blob);
  };
  EXPECT_EQ(launch({}, {}), CUDA_ERROR_INVALID_VALUE);                      // none
  EXPECT_EQ(launch({{0, 8}}, std::vector<uint8_t>(8)), CUDA_ERROR_INVALID_VALUE); // one short
  EXPECT_EQ(launch({{0, 8}, {8, 8}}, std::vector<uint8_t>(16)), CUDA_ERROR_INVALID_VALUE); // size
  std::vector<uint8_t> good(12);
  uint32_t n = 10;
  memcpy(good.data(), &out, 8);
  memcpy(good.data() + 8, &n, 4);
  EXPECT_EQ(launch({{0, 8}, {8, 4}}, good), CUDA_SUCCESS);
  EXPECT_EQ(c.call(FnId::cuCtxSynchronize, {}, ctx), CUDA_SUCCESS);
  std::vector<uint8_t> got;
  ASSERT_EQ(c.call(FnId::cuMemcpyDtoH_v2, {out, 4}, ctx, nullptr, &got), CUDA_SUCCESS);
  uint32_t v = 0;
  memcpy(&v, got.data(), 4);
  EXPECT_EQ(v, 10u); // the kernel ran with the right parameters

  // An event inside a launch attribute is a handle too: the client's own is resolved, any
  // other value refused before the driver sees it.
  uint64_t event = 0;
  ASSERT_EQ(c.call(FnId::cuEventCreate, {0}, ctx, &event), CUDA_SUCCESS);
  auto launchEx = [&](uint64_t e) {
    CUlaunchAttribute attr{};
    attr.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT;
    attr.value.programmaticEvent.event = reinterpret_cast<CUevent>(e);
    ParamSlot slots[2] = {{0, 8}, {8, 4}};
    Writer w;
    encodeLaunch(w, slots, 2, good.data(), good.size(), &attr, 1, sizeof(CUlaunchAttribute));
    std::string blob(reinterpret_cast<const char*>(w.data()), w.size());
    return c.call(static_cast<uint32_t>(FnId::cuLaunchKernelEx), {fn, 1, 1, 1, 1, 1, 1, 0, 0}, ctx,
                  nullptr, nullptr, nullptr, blob);
  };
  EXPECT_EQ(launchEx(event), CUDA_SUCCESS);
  EXPECT_EQ(launchEx(event + 16), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(c.call(FnId::cuCtxSynchronize, {}, ctx), CUDA_SUCCESS);
  EXPECT_TRUE(worker_->alive());
}

// A kernel argument is a pointer the worker cannot see through; one that points into another
// client's memory (directly or inside a by-value struct) is refused before the launch.
TEST_P(WorkerTest, KernelArgumentIntoAnotherClientsMemoryIsRefused) {
  RawClient a, b;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  ASSERT_EQ(b.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctxA = a.context(), ctxB = b.context();
  uint64_t pA = 0, pB = 0, mB = 0, mod = 0, fn = 0;
  ASSERT_EQ(a.call(FnId::cuMemAlloc_v2, {4096}, ctxA, &pA), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuMemAlloc_v2, {4096}, ctxB, &pB), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuMemAllocManaged, {4096, CU_MEM_ATTACH_GLOBAL}, ctxB, &mB), CUDA_SUCCESS);
  std::vector<uint8_t> image(kSpinPtx, kSpinPtx + strlen(kSpinPtx) + 1);
  uint64_t hash = fnv1a64(image.data(), image.size());
  ASSERT_EQ(a.call(FnId::cuModuleLoadData, {hash, image.size()}, ctxA, &mod, nullptr, &image), CUDA_SUCCESS);
  ASSERT_EQ(a.call(static_cast<uint32_t>(FnId::cuModuleGetFunction), {mod}, ctxA, &fn, nullptr,
                   nullptr, "spin"),
            CUDA_SUCCESS);
  auto launch = [&](uint64_t ptr) {
    std::vector<uint8_t> params(12);
    uint32_t n = 1;
    memcpy(params.data(), &ptr, 8);
    memcpy(params.data() + 8, &n, 4);
    std::vector<ParamSlot> slots{{0, 8}, {8, 4}};
    Writer w;
    encodeLaunch(w, slots.data(), 2, params.data(), params.size(), nullptr, 0, sizeof(CUlaunchAttribute));
    std::string blob(reinterpret_cast<const char*>(w.data()), w.size());
    return a.call(static_cast<uint32_t>(FnId::cuLaunchKernel), {fn, 1, 1, 1, 1, 1, 1, 0, 0}, ctxA,
                  nullptr, nullptr, nullptr, blob);
  };
  EXPECT_EQ(launch(pB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(launch(pB + 100), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(launch(mB), CUDA_ERROR_INVALID_VALUE); // managed memory too
  EXPECT_EQ(launch(pA), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuCtxSynchronize, {}, ctxA), CUDA_SUCCESS);

  // The same pointers inside a by-value struct {u32 value; u64 out} (the kernel stores value
  // at out): refused for B's memory, run for A's own.
  const char* structPtx = R"(
.version 7.0
.target sm_50
.address_size 64
.visible .entry viaStruct(.param .align 8 .b8 s[16])
{
  .reg .u32 %r0;
  .reg .u64 %rd<2>;
  ld.param.u32 %r0, [s];
  ld.param.u64 %rd0, [s+8];
  cvta.to.global.u64 %rd1, %rd0;
  st.global.u32 [%rd1], %r0;
  ret;
}
.visible .entry keep(.param .u64 p)
{
  ret;
}
)";
  std::vector<uint8_t> image2(structPtx, structPtx + strlen(structPtx) + 1);
  uint64_t mod2 = 0, viaStruct = 0, keep = 0;
  ASSERT_EQ(a.call(FnId::cuModuleLoadData, {fnv1a64(image2.data(), image2.size()), image2.size()},
                   ctxA, &mod2, nullptr, &image2),
            CUDA_SUCCESS);
  ASSERT_EQ(a.call(static_cast<uint32_t>(FnId::cuModuleGetFunction), {mod2}, ctxA, &viaStruct,
                   nullptr, nullptr, "viaStruct"),
            CUDA_SUCCESS);
  ASSERT_EQ(a.call(static_cast<uint32_t>(FnId::cuModuleGetFunction), {mod2}, ctxA, &keep, nullptr,
                   nullptr, "keep"),
            CUDA_SUCCESS);
  auto launchOne = [&](uint64_t f, std::vector<uint8_t> params) {
    std::vector<ParamSlot> slots{{0, static_cast<uint32_t>(params.size())}};
    Writer w;
    encodeLaunch(w, slots.data(), 1, params.data(), params.size(), nullptr, 0, sizeof(CUlaunchAttribute));
    std::string blob(reinterpret_cast<const char*>(w.data()), w.size());
    return a.call(static_cast<uint32_t>(FnId::cuLaunchKernel), {f, 1, 1, 1, 1, 1, 1, 0, 0}, ctxA,
                  nullptr, nullptr, nullptr, blob);
  };
  auto inStruct = [](uint32_t value, uint64_t out) {
    std::vector<uint8_t> p(16);
    memcpy(p.data(), &value, 4);
    memcpy(p.data() + 8, &out, 8);
    return p;
  };
  EXPECT_EQ(launchOne(viaStruct, inStruct(1, pB)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(launchOne(viaStruct, inStruct(1, mB + 8)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(launchOne(viaStruct, inStruct(77, pA)), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuCtxSynchronize, {}, ctxA), CUDA_SUCCESS);
  std::vector<uint8_t> got;
  ASSERT_EQ(a.call(FnId::cuMemcpyDtoH_v2, {pA, 4}, ctxA, nullptr, &got), CUDA_SUCCESS);
  uint32_t stored = 0;
  memcpy(&stored, got.data(), 4);
  EXPECT_EQ(stored, 77u); // the struct arrived whole

  // Once B frees it, the address is no one's: A may pass it (it is just a number to us), to a
  // kernel that does not touch it.
  std::vector<uint8_t> asWord(8);
  memcpy(asWord.data(), &pB, 8);
  EXPECT_EQ(launchOne(keep, asWord), CUDA_ERROR_INVALID_VALUE); // still B's
  ASSERT_EQ(b.call(FnId::cuMemFree_v2, {pB}, ctxB), CUDA_SUCCESS);
  EXPECT_EQ(launchOne(keep, asWord), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuCtxSynchronize, {}, ctxA), CUDA_SUCCESS);
  EXPECT_TRUE(worker_->alive());
}

// Mirrored host memory: runs that fall outside the caller's mirrors, malformed run lists,
// mirrors over the caller's own device memory or over addresses the worker uses, and copies
// by reference that name no mirror are refused; the connection and the other clients go on.
TEST_P(WorkerTest, MirrorMisuseIsRefused) {
  RawClient a, b;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  ASSERT_EQ(b.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctxA = a.context(), ctxB = b.context();
  uint64_t mA = 0, pB = 0;
  ASSERT_EQ(a.call(FnId::cuMemAllocManaged, {8192, CU_MEM_ATTACH_GLOBAL}, ctxA, &mA), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuMemAlloc_v2, {4096}, ctxB, &pB), CUDA_SUCCESS);
  auto push = [](RawClient& c, uint64_t ctx, std::vector<MirrorRun> runs, size_t bulk) {
    Writer w;
    encodeMirrorRuns(w, runs);
    std::string blob(reinterpret_cast<const char*>(w.data()), w.size());
    std::vector<uint8_t> bytes(bulk, 0x77);
    return c.call(static_cast<uint32_t>(Op::MirrorPush), {}, ctx, nullptr, nullptr,
                  bulk ? &bytes : nullptr, blob);
  };
  // B writes into A's managed memory: refused, A's bytes untouched.
  EXPECT_EQ(push(b, ctxB, {{mA, 16}}, 16), CUDA_ERROR_INVALID_VALUE);
  // Into its own device memory (not a mirror), past A's mirror, runs not matching the bulk.
  EXPECT_EQ(push(b, ctxB, {{pB, 16}}, 16), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(push(a, ctxA, {{mA + 8000, 400}}, 400), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(push(a, ctxA, {{mA, 16}}, 15), CUDA_ERROR_INVALID_VALUE);
  // A's own push lands.
  EXPECT_EQ(push(a, ctxA, {{mA + 4, 4}}, 4), CUDA_SUCCESS);
  std::vector<uint8_t> got;
  ASSERT_EQ(a.call(FnId::cuMemcpyDtoH_v2, {mA, 8}, ctxA, nullptr, &got), CUDA_SUCCESS);
  EXPECT_EQ(got, (std::vector<uint8_t>{0, 0, 0, 0, 0x77, 0x77, 0x77, 0x77}));
  // B's pull brings nothing of A's.
  std::vector<uint8_t> pulled;
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::MirrorPull), {}, ctxB, nullptr, &pulled), CUDA_SUCCESS);
  EXPECT_TRUE(pulled.empty());
  // A mirror over B's own device memory, at a null or wrapping address, or at an address the
  // worker has already mapped (here: a mirror of A's).
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::MirrorHost), {pB, 4096}, ctxB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::MirrorHost), {0, 4096}, ctxB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::MirrorHost), {~uint64_t(0) - 10, 4096}, ctxB), CUDA_ERROR_INVALID_VALUE);
  uint64_t hostA = 0x5b0000000000;
  ASSERT_EQ(a.call(static_cast<uint32_t>(Op::MirrorHost), {hostA, 4096}, ctxA), CUDA_SUCCESS);
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::MirrorHost), {hostA + 100, 10}, ctxB), CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::MirrorRelease), {mA}, ctxB), CUDA_ERROR_INVALID_VALUE);
  // A copy by reference between two device ranges (no mirror), or from A's mirror into B.
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::CopyHostByRef), {pB, pB, 16, 0}, ctxB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::CopyHostByRef), {pB, mA, 16, 0}, ctxB), CUDA_ERROR_INVALID_VALUE);
  // A mirror B may have: a fresh page range of its own.
  uint64_t addr = 0x5a0000000000;
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::MirrorHost), {addr, 10000}, ctxB), CUDA_SUCCESS);
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::MirrorHost), {addr + 4096, 10}, ctxB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(push(b, ctxB, {{addr + 9990, 10}}, 10), CUDA_SUCCESS);
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::CopyHostByRef), {pB, addr + 9990, 10, 0}, ctxB), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuMemcpyDtoH_v2, {pB, 10}, ctxB, nullptr, &got), CUDA_SUCCESS);
  EXPECT_EQ(got, std::vector<uint8_t>(10, 0x77));
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::MirrorRelease), {addr}, ctxB), CUDA_SUCCESS);
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::MirrorRelease), {addr}, ctxB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(a.call(FnId::cuMemFree_v2, {mA}, ctxA), CUDA_SUCCESS);
  EXPECT_TRUE(worker_->alive());
}

// A synchronisation asked to (kFlagPullMirrors) brings what the device changed in mirrored
// memory in its own reply, as a MirrorPull would; a failed call, or one whose reply carries
// other content, does not (the client then pulls separately), and a pull afterwards finds
// nothing left.
TEST_P(WorkerTest, SynchronisationBringsMirrorChanges) {
  RawClient a;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctx = a.context(), m = 0;
  ASSERT_EQ(a.call(FnId::cuMemAllocManaged, {3 * 4096, CU_MEM_ATTACH_GLOBAL}, ctx, &m), CUDA_SUCCESS);
  const auto sync = static_cast<uint32_t>(FnId::cuCtxSynchronize);
  FrameHeader reply;
  std::string blob;
  std::vector<uint8_t> bytes;
  // The device writes 100 bytes in the middle page.
  ASSERT_EQ(a.call(FnId::cuMemsetD8_v2, {m + 4096 + 10, 0x42, 100}, ctx), CUDA_SUCCESS);
  ASSERT_EQ(a.call(sync, {}, ctx, nullptr, &bytes, nullptr, "", kFlagPullMirrors, &reply, &blob), CUDA_SUCCESS);
  EXPECT_EQ(reply.flags, kFlagMirrorRuns);
  std::vector<MirrorRun> runs;
  ASSERT_TRUE(decodeMirrorRuns(blob, reply.bulkLen, &runs).isOk());
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].addr, m + 4096);
  ASSERT_EQ(bytes.size(), 4096u);
  EXPECT_EQ(bytes[9], 0);
  EXPECT_EQ(bytes[10], 0x42);
  EXPECT_EQ(bytes[109], 0x42);
  EXPECT_EQ(bytes[110], 0);
  // Nothing changed since: the next synchronisation brings an empty list, a pull nothing.
  ASSERT_EQ(a.call(sync, {}, ctx, nullptr, &bytes, nullptr, "", kFlagPullMirrors, &reply, &blob), CUDA_SUCCESS);
  EXPECT_EQ(reply.flags, kFlagMirrorRuns);
  EXPECT_TRUE(bytes.empty());
  ASSERT_TRUE(decodeMirrorRuns(blob, 0, &runs).isOk());
  EXPECT_TRUE(runs.empty());
  // A call that fails, and one whose reply has bulk of its own, bring no runs; the device's
  // change stays for the pull.
  ASSERT_EQ(a.call(FnId::cuMemsetD8_v2, {m, 0x17, 4}, ctx), CUDA_SUCCESS);
  EXPECT_EQ(a.call(static_cast<uint32_t>(FnId::cuStreamSynchronize), {0xbad0}, ctx, nullptr, &bytes, nullptr, "",
                   kFlagPullMirrors, &reply),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(reply.flags, 0);
  ASSERT_EQ(a.call(static_cast<uint32_t>(FnId::cuMemcpyDtoH_v2), {m, 8}, ctx, nullptr, &bytes, nullptr, "",
                   kFlagPullMirrors, &reply),
            CUDA_SUCCESS);
  EXPECT_EQ(reply.flags, 0);
  EXPECT_EQ(bytes, (std::vector<uint8_t>{0x17, 0x17, 0x17, 0x17, 0, 0, 0, 0}));
  ASSERT_EQ(a.call(static_cast<uint32_t>(Op::MirrorPull), {}, ctx, nullptr, &bytes, nullptr, "", kFlagNone,
                   &reply, &blob),
            CUDA_SUCCESS);
  ASSERT_TRUE(decodeMirrorRuns(blob, reply.bulkLen, &runs).isOk());
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].addr, m);
  EXPECT_EQ(bytes[3], 0x17);
  EXPECT_EQ(a.call(FnId::cuMemFree_v2, {m}, ctx), CUDA_SUCCESS);
  EXPECT_TRUE(worker_->alive());
}

// Shared pinned memory (shm only): the worker maps the client's memfd at the client's address.
// Without a descriptor, at a misaligned or taken address, or over TCP, it refuses; a shared
// range then works for copies by reference, and another client cannot use it.
TEST_P(WorkerTest, ShareHostMisuseIsRefused) {
  RawClient a, b;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  ASSERT_EQ(b.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctxA = a.context(), ctxB = b.context();
  const uint64_t addr = 0x5c0000000000, size = 2 * 4096;
  int keep = -1; // the descriptor of the share that succeeds: the test maps it too
  auto share = [&](RawClient& c, uint64_t ctx, uint64_t at, uint64_t n, bool withFd) {
    int fd = memfd_create("test-pinned", MFD_CLOEXEC);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, 4 * 4096), 0);
    if (withFd) {
      // Descriptors pass only over shared memory's socket; TCP says it cannot.
      EXPECT_EQ(c.transport().sendFd(fd).isOk(), transport_ == "shm");
    }
    CUresult r = c.call(static_cast<uint32_t>(Op::ShareHost), {at, n}, ctx);
    if (r == CUDA_SUCCESS && keep < 0) keep = fd;
    else close(fd);
    return r;
  };
  if (transport_ == "tcp") {
    EXPECT_EQ(share(a, ctxA, addr, size, true), CUDA_ERROR_NOT_SUPPORTED);
    EXPECT_TRUE(worker_->alive());
    return;
  }
  EXPECT_EQ(share(a, ctxA, addr, size, false), CUDA_ERROR_INVALID_VALUE);     // no descriptor
  EXPECT_EQ(share(a, ctxA, addr + 100, size, true), CUDA_ERROR_INVALID_VALUE); // misaligned
  EXPECT_EQ(share(a, ctxA, addr, 8 * 4096, true), CUDA_ERROR_INVALID_VALUE);   // past the memfd
  ASSERT_EQ(share(a, ctxA, addr, size, true), CUDA_SUCCESS);
  EXPECT_EQ(share(b, ctxB, addr, size, true), CUDA_ERROR_NOT_SUPPORTED);       // taken
  EXPECT_EQ(share(a, ctxA, addr, size, true), CUDA_ERROR_INVALID_VALUE);       // already A's
  uint64_t pA = 0, pB = 0;
  ASSERT_EQ(a.call(FnId::cuMemAlloc_v2, {64}, ctxA, &pA), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuMemAlloc_v2, {64}, ctxB, &pB), CUDA_SUCCESS);
  std::vector<uint8_t> data(64, 0x42), got;
  ASSERT_EQ(a.call(FnId::cuMemcpyHtoD_v2, {pA, 64}, ctxA, nullptr, nullptr, &data), CUDA_SUCCESS);
  EXPECT_EQ(a.call(static_cast<uint32_t>(Op::CopyHostByRef), {addr + 8, pA, 64, ~uint64_t(0)}, ctxA), CUDA_SUCCESS);
  // The bytes are in the memfd's pages: the worker wrote the client's memory, no copy between.
  void* view = mmap(nullptr, size, PROT_READ, MAP_SHARED, keep, 0);
  ASSERT_NE(view, MAP_FAILED);
  EXPECT_EQ(memcmp(static_cast<uint8_t*>(view) + 8, data.data(), 64), 0);
  munmap(view, size);
  close(keep);
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::CopyHostByRef), {pB, addr + 8, 64, ~uint64_t(0)}, ctxB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(b.call(static_cast<uint32_t>(Op::MirrorRelease), {addr}, ctxB), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(a.call(static_cast<uint32_t>(Op::MirrorRelease), {addr}, ctxA), CUDA_SUCCESS);
  EXPECT_TRUE(worker_->alive());
}

// Managed memory handed to its client (ShareManaged, shared memory only): only the base of the
// caller's own managed allocation, once; then the client's descriptor maps the very pages the
// device writes, and the allocation is no longer a mirror.
TEST_P(WorkerTest, ShareManagedMisuseIsRefused) {
  RawClient a, b;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  ASSERT_EQ(b.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctxA = a.context(), ctxB = b.context();
  uint64_t mA = 0, pA = 0, bytes = 0;
  const uint64_t size = 3 * 4096 + 100;
  ASSERT_EQ(a.call(FnId::cuMemAllocManaged, {size, CU_MEM_ATTACH_GLOBAL}, ctxA, &mA), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuMemAlloc_v2, {4096}, ctxA, &pA), CUDA_SUCCESS);
  const uint32_t share = static_cast<uint32_t>(Op::ShareManaged);
  if (transport_ == "tcp") {
    EXPECT_EQ(a.call(share, {mA}, ctxA, &bytes), CUDA_ERROR_NOT_SUPPORTED); // no descriptors there
    EXPECT_TRUE(worker_->alive());
    return;
  }
  EXPECT_EQ(b.call(share, {mA}, ctxB, &bytes), CUDA_ERROR_INVALID_VALUE);        // A's
  EXPECT_EQ(a.call(share, {mA + 4096}, ctxA, &bytes), CUDA_ERROR_INVALID_VALUE); // not the base
  EXPECT_EQ(a.call(share, {pA}, ctxA, &bytes), CUDA_ERROR_INVALID_VALUE);        // device memory
  EXPECT_EQ(a.call(share, {}, ctxA, &bytes), CUDA_ERROR_INVALID_VALUE);          // no address
  ASSERT_EQ(a.call(share, {mA}, ctxA, &bytes), CUDA_SUCCESS);
  EXPECT_EQ(bytes, 4 * 4096u);
  auto fd = a.transport().receiveFd(1000);
  ASSERT_TRUE(fd.isOk());
  // The device's write is in the descriptor's pages, with no exchange.
  std::vector<uint8_t> data(64, 0x5d);
  ASSERT_EQ(a.call(FnId::cuMemcpyHtoD_v2, {mA + 3 * 4096, 64}, ctxA, nullptr, nullptr, &data), CUDA_SUCCESS);
  void* view = mmap(nullptr, bytes, PROT_READ, MAP_SHARED, *fd, 0);
  close(*fd);
  ASSERT_NE(view, MAP_FAILED);
  EXPECT_EQ(memcmp(static_cast<uint8_t*>(view) + 3 * 4096, data.data(), 64), 0);
  munmap(view, bytes);
  // No longer mirrored: asked again, or pushed to, it is refused.
  EXPECT_EQ(a.call(share, {mA}, ctxA, &bytes), CUDA_ERROR_INVALID_VALUE);
  Writer w;
  encodeMirrorRuns(w, {{mA, 16}});
  std::vector<uint8_t> bulk(16, 1);
  EXPECT_EQ(a.call(static_cast<uint32_t>(Op::MirrorPush), {}, ctxA, nullptr, nullptr, &bulk,
                   std::string(reinterpret_cast<const char*>(w.data()), w.size())),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(a.call(FnId::cuMemFree_v2, {mA}, ctxA), CUDA_SUCCESS);
  EXPECT_TRUE(worker_->alive());
}

// While a stream is captured, copies the worker would stage in its own buffers are refused:
// a graph replayed later would read staging long since freed.
TEST_P(WorkerTest, CapturedStagedCopiesAreRefused) {
  RawClient c;
  ASSERT_EQ(c.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctx = c.context(), stream = 0, d = 0, graph = 0;
  ASSERT_EQ(c.call(FnId::cuStreamCreate, {0}, ctx, &stream), CUDA_SUCCESS);
  ASSERT_EQ(c.call(FnId::cuMemAlloc_v2, {4096}, ctx, &d), CUDA_SUCCESS);
  ASSERT_EQ(c.call(FnId::cuStreamBeginCapture_v2, {stream, CU_STREAM_CAPTURE_MODE_RELAXED}, ctx), CUDA_SUCCESS);
  std::vector<uint8_t> bytes(4096, 1);
  EXPECT_EQ(c.call(FnId::cuMemcpyHtoDAsync_v2, {d, 4096, stream}, ctx, nullptr, nullptr, &bytes),
            CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(c.call(static_cast<uint32_t>(Op::HostToDeviceAtStreamTime), {d, 4096, stream, 7}, ctx),
            CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(c.call(FnId::cuStreamEndCapture, {stream}, ctx, &graph), CUDA_SUCCESS);
  // Outside a capture the same copy goes through.
  EXPECT_EQ(c.call(FnId::cuMemcpyHtoDAsync_v2, {d, 4096, stream}, ctx, nullptr, nullptr, &bytes), CUDA_SUCCESS);
  EXPECT_EQ(c.call(FnId::cuStreamSynchronize, {stream}, ctx), CUDA_SUCCESS);
  EXPECT_EQ(c.call(FnId::cuGraphDestroy, {graph}, ctx), CUDA_SUCCESS);
  EXPECT_TRUE(worker_->alive());
}

// Graph nodes name only the client's own graphs, nodes and memory: a memcpy node (added, or its
// parameters set again in a graph or an executable graph) whose host
// side is not memory the worker holds at that address (it would be read at every launch),
// or whose device side is another client's, and dependencies on another client's nodes are
// refused.
TEST_P(WorkerTest, GraphNodesAreChecked) {
  RawClient a, b;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  ASSERT_EQ(b.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctxA = a.context(), ctxB = b.context();
  uint64_t gA = 0, gB = 0, dA = 0, dB = 0, nodeB = 0;
  ASSERT_EQ(a.call(FnId::cuGraphCreate, {0}, ctxA, &gA), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuGraphCreate, {0}, ctxB, &gB), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuMemAlloc_v2, {4096}, ctxA, &dA), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuMemAlloc_v2, {4096}, ctxB, &dB), CUDA_SUCCESS);
  auto blob = [](std::vector<uint64_t> deps, const void* params, size_t size) {
    Writer w;
    w.u32(static_cast<uint32_t>(deps.size()));
    for (uint64_t d : deps) w.u64(d);
    w.bytes(params, size);
    return std::string(reinterpret_cast<const char*>(w.data()), w.size());
  };
  ASSERT_EQ(b.call(static_cast<uint32_t>(FnId::cuGraphAddEmptyNode), {gB}, ctxB, &nodeB, nullptr,
                   nullptr, blob({}, nullptr, 0)),
            CUDA_SUCCESS);
  auto copyParams = [](CUmemorytype srcType, uint64_t src, uint64_t dst) {
    CUDA_MEMCPY3D c{};
    c.srcMemoryType = srcType;
    if (srcType == CU_MEMORYTYPE_HOST) c.srcHost = reinterpret_cast<const void*>(src);
    else c.srcDevice = src;
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = dst;
    c.WidthInBytes = 64;
    c.Height = 1;
    c.Depth = 1;
    return c;
  };
  uint64_t nodeA = 0;
  auto memcpyNode = [&](CUmemorytype srcType, uint64_t src, uint64_t dst, std::vector<uint64_t> deps) {
    CUDA_MEMCPY3D c = copyParams(srcType, src, dst);
    return a.call(static_cast<uint32_t>(FnId::cuGraphAddMemcpyNode), {gA, ctxA}, ctxA, &nodeA,
                  nullptr, nullptr, blob(deps, &c, sizeof(c)));
  };
  std::vector<uint8_t> local(64);
  EXPECT_EQ(memcpyNode(CU_MEMORYTYPE_HOST, reinterpret_cast<uint64_t>(local.data()), dA, {}),
            CUDA_ERROR_INVALID_VALUE);                                         // not held there
  EXPECT_EQ(memcpyNode(CU_MEMORYTYPE_DEVICE, dB, dA, {}), CUDA_ERROR_INVALID_VALUE); // B's memory
  EXPECT_EQ(memcpyNode(CU_MEMORYTYPE_DEVICE, dA + 64, dA, {nodeB}), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(memcpyNode(CU_MEMORYTYPE_DEVICE, dA + 64, dA, {}), CUDA_SUCCESS);
  // Its parameters set again are checked as a new node's are; B's node is no node to A.
  auto setCopy = [&](uint64_t node, CUDA_MEMCPY3D c, size_t size = sizeof(CUDA_MEMCPY3D)) {
    return a.call(static_cast<uint32_t>(FnId::cuGraphMemcpyNodeSetParams), {node}, ctxA, nullptr,
                  nullptr, nullptr, std::string(reinterpret_cast<const char*>(&c), size));
  };
  EXPECT_EQ(setCopy(nodeA, copyParams(CU_MEMORYTYPE_HOST, reinterpret_cast<uint64_t>(local.data()), dA)),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(setCopy(nodeA, copyParams(CU_MEMORYTYPE_DEVICE, dB, dA)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(setCopy(nodeA, copyParams(CU_MEMORYTYPE_DEVICE, dA + 128, dA), 40), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(setCopy(nodeB, copyParams(CU_MEMORYTYPE_DEVICE, dA + 128, dA)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(setCopy(nodeA, copyParams(CU_MEMORYTYPE_DEVICE, dA + 128, dA)), CUDA_SUCCESS);
  CUDA_MEMSET_NODE_PARAMS ms{dA, 0, 1, 1, 64, 1};
  EXPECT_EQ(a.call(static_cast<uint32_t>(FnId::cuGraphMemsetNodeSetParams), {nodeB}, ctxA, nullptr,
                   nullptr, nullptr, std::string(reinterpret_cast<const char*>(&ms), sizeof ms)),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(a.call(FnId::cuGraphHostNodeSetParams, {nodeB, 1}, ctxA), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(a.call(static_cast<uint32_t>(FnId::cuGraphAddEmptyNode), {gB}, ctxA, nullptr, nullptr,
                   nullptr, blob({}, nullptr, 0)),
            CUDA_ERROR_INVALID_HANDLE);                                        // B's graph
  // Introspection, clones, child graphs and updates name only the client's own too: B's node
  // is no node to A (INVALID_VALUE, as the driver says of a node that does not exist), B's
  // graph is not A's handle.
  uint64_t out[3] = {};
  EXPECT_EQ(a.call(FnId::cuGraphNodeGetType, {nodeB}, ctxA, out), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(a.call(FnId::cuGraphMemsetNodeGetParams, {nodeB}, ctxA, out), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(a.call(FnId::cuGraphKernelNodeGetParams_v2, {nodeB}, ctxA, out), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(a.call(FnId::cuGraphNodeGetDependentNodes, {nodeB, 4}, ctxA, out), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(a.call(FnId::cuGraphDestroyNode, {nodeB}, ctxA), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(a.call(FnId::cuGraphClone, {gB}, ctxA, out), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(a.call(FnId::cuGraphGetRootNodes, {gB, 4}, ctxA, out), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(a.call(FnId::cuGraphGetEdges, {gB, 4}, ctxA, out), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(a.call(static_cast<uint32_t>(FnId::cuGraphAddChildGraphNode), {gA, gB}, ctxA, out,
                   nullptr, nullptr, blob({}, nullptr, 0)),
            CUDA_ERROR_INVALID_HANDLE);
  uint64_t execA = 0;
  ASSERT_EQ(a.call(FnId::cuGraphInstantiateWithFlags, {gA, 0}, ctxA, &execA), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuGraphExecUpdate_v2, {execA, gB}, ctxA, out), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(a.call(FnId::cuGraphNodeSetEnabled, {execA, nodeB, 0}, ctxA), CUDA_ERROR_INVALID_VALUE);
  CUDA_MEMCPY3D own = copyParams(CU_MEMORYTYPE_DEVICE, dA + 256, dA);
  std::string ownBlob(reinterpret_cast<const char*>(&own), sizeof own);
  EXPECT_EQ(a.call(static_cast<uint32_t>(FnId::cuGraphExecMemcpyNodeSetParams), {execA, nodeB, ctxA},
                   ctxA, nullptr, nullptr, nullptr, ownBlob),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(a.call(static_cast<uint32_t>(FnId::cuGraphExecMemcpyNodeSetParams), {execA, nodeA, ctxA},
                   ctxA, nullptr, nullptr, nullptr, ownBlob),
            CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuGraphExecHostNodeSetParams, {execA, nodeB, 1}, ctxA), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(b.call(FnId::cuGraphNodeGetType, {nodeB}, ctxB, out), CUDA_SUCCESS); // B's still
  EXPECT_EQ(a.call(FnId::cuGraphExecDestroy, {execA}, ctxA), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuGraphDestroy, {gA}, ctxA), CUDA_SUCCESS);
  EXPECT_EQ(b.call(FnId::cuGraphDestroy, {gB}, ctxB), CUDA_SUCCESS);
  EXPECT_TRUE(worker_->alive());
}

// A graph whose memcpy node reads host memory the client released since (a mirror it let go,
// as a clone of a destroyed graph once made the stub do), or whose memset node writes device
// memory freed since, fails with an illegal address when it runs; the worker lives on and
// serves another client.
TEST_P(WorkerTest, GraphReadingReleasedMemoryFailsAndTheWorkerLives) {
  RawClient a, b;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  ASSERT_EQ(b.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctxA = a.context(), ctxB = b.context();
  uint64_t g = 0, d = 0, node = 0, exec = 0, dB = 0;
  const uint64_t host = 0x5d0000000000;
  ASSERT_EQ(a.call(static_cast<uint32_t>(Op::MirrorHost), {host, 4096}, ctxA), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuMemAlloc_v2, {4096}, ctxA, &d), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuGraphCreate, {0}, ctxA, &g), CUDA_SUCCESS);
  CUDA_MEMCPY3D c{};
  c.srcMemoryType = CU_MEMORYTYPE_HOST;
  c.srcHost = reinterpret_cast<const void*>(host);
  c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  c.dstDevice = d;
  c.WidthInBytes = 4096;
  c.Height = 1;
  c.Depth = 1;
  Writer w;
  w.u32(0);
  w.bytes(&c, sizeof c);
  ASSERT_EQ(a.call(static_cast<uint32_t>(FnId::cuGraphAddMemcpyNode), {g, ctxA}, ctxA, &node, nullptr,
                   nullptr, std::string(reinterpret_cast<const char*>(w.data()), w.size())),
            CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuGraphInstantiateWithFlags, {g, 0}, ctxA, &exec), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuGraphLaunch, {exec, 0}, ctxA), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuCtxSynchronize, {}, ctxA), CUDA_SUCCESS);
  ASSERT_EQ(a.call(static_cast<uint32_t>(Op::MirrorRelease), {host}, ctxA), CUDA_SUCCESS);
  CUresult launched = a.call(FnId::cuGraphLaunch, {exec, 0}, ctxA);
  CUresult synced = a.call(FnId::cuCtxSynchronize, {}, ctxA);
  EXPECT_TRUE(launched == CUDA_ERROR_ILLEGAL_ADDRESS || synced == CUDA_ERROR_ILLEGAL_ADDRESS)
      << launched << " " << synced;
  EXPECT_TRUE(worker_->alive());
  // A memset node on device memory freed since: the same.
  uint64_t gB = 0, nodeB = 0, execB = 0;
  ASSERT_EQ(b.call(FnId::cuMemAlloc_v2, {1 << 16}, ctxB, &dB), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuGraphCreate, {0}, ctxB, &gB), CUDA_SUCCESS);
  CUDA_MEMSET_NODE_PARAMS ms{dB, 0, 7, 1, 1 << 16, 1};
  Writer wm;
  wm.u32(0);
  wm.bytes(&ms, sizeof ms);
  ASSERT_EQ(b.call(static_cast<uint32_t>(FnId::cuGraphAddMemsetNode), {gB, ctxB}, ctxB, &nodeB, nullptr,
                   nullptr, std::string(reinterpret_cast<const char*>(wm.data()), wm.size())),
            CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuGraphInstantiateWithFlags, {gB, 0}, ctxB, &execB), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuMemFree_v2, {dB}, ctxB), CUDA_SUCCESS);
  launched = b.call(FnId::cuGraphLaunch, {execB, 0}, ctxB);
  synced = b.call(FnId::cuCtxSynchronize, {}, ctxB);
  EXPECT_TRUE(launched == CUDA_ERROR_ILLEGAL_ADDRESS || synced == CUDA_ERROR_ILLEGAL_ADDRESS)
      << launched << " " << synced;
  EXPECT_TRUE(worker_->alive());
  RawClient third;
  ASSERT_EQ(third.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctxC = third.context(), dC = 0;
  EXPECT_EQ(third.call(FnId::cuMemAlloc_v2, {64}, ctxC, &dC), CUDA_SUCCESS);
  EXPECT_EQ(third.call(FnId::cuMemFree_v2, {dC}, ctxC), CUDA_SUCCESS);
}

TEST_P(WorkerTest, MalformedFramesDropOnlyTheirConnection) {
  RawClient good;
  ASSERT_EQ(good.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctx = good.context();

  {  // Wrong token: refused in the handshake.
    RawClient c;
    EXPECT_EQ(c.open(worker_->address(), "not-the-token"), CUDA_ERROR_NOT_PERMITTED);
  }
  {  // Random bytes after a good handshake.
    RawClient c;
    ASSERT_EQ(c.open(worker_->address(), token_), CUDA_SUCCESS);
    std::vector<uint8_t> noise(256);
    std::mt19937 rng(7);
    for (auto& b : noise) b = static_cast<uint8_t>(rng());
    iovec v{noise.data(), noise.size()};
    ASSERT_TRUE(c.transport().writeV(&v, 1).isOk());
    EXPECT_TRUE(c.droppedWithin(2000));
  }
  {  // Oversized args length.
    RawClient c;
    ASSERT_EQ(c.open(worker_->address(), token_), CUDA_SUCCESS);
    FrameHeader f;
    f.kind = static_cast<uint16_t>(Kind::Call);
    f.argsLen = kMaxArgs + 1;
    uint8_t raw[kHeaderSize];
    encodeHeader(f, raw);
    iovec v{raw, kHeaderSize};
    ASSERT_TRUE(c.transport().writeV(&v, 1).isOk());
    EXPECT_TRUE(c.droppedWithin(2000));
  }
  {  // A call whose args do not decode (scalar count past the end).
    RawClient c;
    ASSERT_EQ(c.open(worker_->address(), token_), CUDA_SUCCESS);
    uint8_t args[5] = {15, 1, 2, 3, 4};
    FrameHeader f;
    f.kind = static_cast<uint16_t>(Kind::Call);
    f.fn = static_cast<uint32_t>(FnId::cuMemAlloc_v2);
    f.argsLen = sizeof(args);
    ASSERT_TRUE(sendFrame(c.transport(), f, args, nullptr, 0).isOk());
    EXPECT_TRUE(c.droppedWithin(2000));
  }
  {  // Truncated: the header promises more than ever comes, then the client goes. The worker
     // must give the session up, not wait for the rest: the client's memory comes back.
    uint64_t before[2] = {}, now[2] = {};
    ASSERT_EQ(good.call(FnId::cuMemGetInfo_v2, {}, ctx, before), CUDA_SUCCESS);
    {
      RawClient c;
      ASSERT_EQ(c.open(worker_->address(), token_), CUDA_SUCCESS);
      uint64_t cctx = c.context(), held = 0;
      ASSERT_EQ(c.call(FnId::cuMemAlloc_v2, {64u << 20}, cctx, &held), CUDA_SUCCESS);
      FrameHeader f;
      f.kind = static_cast<uint16_t>(Kind::Call);
      f.argsLen = 100;
      uint8_t raw[kHeaderSize + 10] = {};
      encodeHeader(f, raw);
      iovec v{raw, sizeof(raw)};
      ASSERT_TRUE(c.transport().writeV(&v, 1).isOk());
    }
    auto start = Clock::now();
    do {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ASSERT_EQ(good.call(FnId::cuMemGetInfo_v2, {}, ctx, now), CUDA_SUCCESS);
    } while (now[0] != before[0] && secondsSince(start) < 10);
    EXPECT_EQ(now[0], before[0]) << "the truncated client's session was not released";
  }
  {  // A call before the handshake.
    auto t = connect(worker_->address(), 2000);
    ASSERT_TRUE(t.isOk());
    FrameHeader f;
    f.kind = static_cast<uint16_t>(Kind::Call);
    ASSERT_TRUE(sendFrame(**t, f, nullptr, nullptr, 0).isOk());
    FrameHeader r;
    ASSERT_TRUE(readHeader(**t, &r).isOk());
    EXPECT_EQ(r.kind, static_cast<uint16_t>(Kind::HelloReply)); // answered as a failed handshake
    EXPECT_EQ(r.result, CUDA_ERROR_INVALID_VALUE);
  }
  {  // Unknown function numbers and mutated scalars for real calls: answered, not fatal.
    RawClient c;
    ASSERT_EQ(c.open(worker_->address(), token_), CUDA_SUCCESS);
    uint64_t cctx = c.context();
    EXPECT_EQ(c.call(0xfffffff0u, {1, 2}, cctx), CUDA_ERROR_NOT_SUPPORTED);
    std::mt19937_64 rng(99);
    const FnId fns[] = {FnId::cuMemcpyDtoH_v2, FnId::cuMemsetD32_v2, FnId::cuStreamSynchronize,
                        FnId::cuEventRecord, FnId::cuMemFree_v2, FnId::cuLaunchKernel,
                        FnId::cuModuleGetFunction, FnId::cuMemcpyDtoD_v2};
    for (int i = 0; i < 400; ++i) {
      FnId fn = fns[i % 8];
      std::vector<uint64_t> s(rng() % 10);
      for (auto& x : s) x = (rng() % 4 == 0) ? rng() % 64 : rng();
      CUresult r = c.call(static_cast<uint32_t>(fn), s, cctx, nullptr, nullptr, nullptr,
                          std::string(rng() % 40, 'x'));
      ASSERT_NE(r, CUDA_ERROR_DEVICE_UNAVAILABLE) << "worker dropped a well-framed call " << i;
    }
  }
  // The good client never noticed.
  uint64_t p = 0;
  EXPECT_EQ(good.call(FnId::cuMemAlloc_v2, {4096}, ctx, &p), CUDA_SUCCESS);
  EXPECT_EQ(good.call(FnId::cuMemFree_v2, {p}, ctx), CUDA_SUCCESS);
  EXPECT_TRUE(worker_->alive());
  RawClient late;
  EXPECT_EQ(late.open(worker_->address(), token_), CUDA_SUCCESS);
}

// ---- stub clients in forked children ------------------------------------------------------

struct Stub {
  void* lib = nullptr;
  template <typename F> F get(const char* name) { return reinterpret_cast<F>(dlsym(lib, name)); }
};

// A kernel that spins for n iterations (the soft GPU JITs the PTX).
extern const char kSpinPtx[] = R"(
.version 7.0
.target sm_50
.address_size 64
.visible .entry spin(.param .u64 out, .param .u32 n)
{
  .reg .u32 %r<4>;
  .reg .u64 %rd<3>;
  .reg .pred %p;
  ld.param.u64 %rd0, [out];
  ld.param.u32 %r0, [n];
  mov.u32 %r1, 0;
LOOP:
  add.u32 %r1, %r1, 1;
  setp.lt.u32 %p, %r1, %r0;
  @%p bra LOOP;
  cvta.to.global.u64 %rd1, %rd0;
  st.global.u32 [%rd1], %r1;
  ret;
}
)";

// Runs `body` in a child with the stub connected to `address`; the child reports on `fd`:
// "R" when it is about to block, then the CUresult of the call that failed (4 bytes).
template <typename Body> pid_t spawnStubClient(const std::string& address, const std::string& token,
                                               int fd, Body body) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  setenv("TF_REMOTE_WORKER", address.c_str(), 1);
  setenv("TF_REMOTE_TOKEN", token.c_str(), 1);
  Stub s;
  s.lib = dlopen(TF_STUB_LIB, RTLD_NOW | RTLD_LOCAL);
  if (!s.lib) _exit(3);
  auto init = s.get<CUresult (*)(unsigned)>("cuInit");
  auto retain = s.get<CUresult (*)(CUcontext*, CUdevice)>("cuDevicePrimaryCtxRetain");
  auto setCurrent = s.get<CUresult (*)(CUcontext)>("cuCtxSetCurrent");
  CUcontext ctx;
  if (init(0) != CUDA_SUCCESS || retain(&ctx, 0) != CUDA_SUCCESS || setCurrent(ctx) != CUDA_SUCCESS)
    _exit(4);
  body(s, fd);
  _exit(0);
}

void report(int fd, CUresult r) {
  int32_t v = r;
  (void)!write(fd, &v, 4);
}

struct FaultResult {
  CUresult first = CUDA_SUCCESS;
  CUresult later = CUDA_SUCCESS;
  double seconds = 99;
};

// Waits for "R", kills the worker after `delayMs`, and times the child's failure.
FaultResult killWorkerDuring(WorkerProcess& w, int fd, int delayMs, bool stopOnly = false) {
  FaultResult out;
  char ready = 0;
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 20000) != 1 || read(fd, &ready, 1) != 1 || ready != 'R') return out;
  std::this_thread::sleep_for(std::chrono::milliseconds(delayMs));
  auto t0 = Clock::now();
  if (stopOnly) w.stop();
  else w.kill9();
  int32_t codes[2] = {0, 0};
  size_t got = 0;
  while (got < sizeof(codes) && secondsSince(t0) < 10) {
    if (poll(&p, 1, 100) != 1) continue;
    ssize_t n = read(fd, reinterpret_cast<char*>(codes) + got, sizeof(codes) - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
    if (got >= 4 && out.seconds == 99) out.seconds = secondsSince(t0);
  }
  out.first = static_cast<CUresult>(codes[0]);
  out.later = static_cast<CUresult>(codes[1]);
  return out;
}

// A stub client's stderr, kept in a file: the stub says there why it gave up on the worker
// ("remote worker unavailable: ..."), which tells a closed connection from the heartbeat.
class ChildLog {
public:
  ChildLog() {
    char tmpl[] = "/tmp/tf-worker-test-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd >= 0) close(fd);
    path_ = tmpl;
  }
  ~ChildLog() { unlink(path_.c_str()); }
  // In the child: stderr goes to the file from here on.
  void redirect() const {
    int fd = open(path_.c_str(), O_WRONLY | O_APPEND);
    if (fd >= 0) dup2(fd, 2), close(fd);
  }
  std::string text() const {
    std::string out;
    int fd = open(path_.c_str(), O_RDONLY);
    char buf[4096];
    for (ssize_t n; fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
    if (fd >= 0) close(fd);
    return out;
  }

private:
  std::string path_;
};

// The stub gives a worker up after 1.5 s without an answer to its heartbeat (docs/remoting.md);
// a dead worker's closed connection is noticed at once. Bounds leave room for a loaded machine:
// what tells the two apart is the stub's own reason (ChildLog), not a tight clock.
constexpr double kHeartbeatGivesUpS = 1.5;
constexpr double kLoadedMachineSlackS = 5.0;

void finishChild(pid_t pid) {
  for (int i = 0; i < 100 && waitpid(pid, nullptr, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

// After the failure, a later call must fail at once too.
void laterCall(Stub& s, int fd) {
  auto alloc = s.get<CUresult (*)(CUdeviceptr*, size_t)>("cuMemAlloc_v2");
  CUdeviceptr p;
  report(fd, alloc(&p, 4096));
}

void launchSpin(Stub& s, CUstream stream, CUdeviceptr out, unsigned n) {
  static CUfunction f = nullptr;
  if (!f) {
    auto load = s.get<CUresult (*)(CUmodule*, const void*)>("cuModuleLoadData");
    auto getf = s.get<CUresult (*)(CUfunction*, CUmodule, const char*)>("cuModuleGetFunction");
    CUmodule m;
    if (load(&m, kSpinPtx) != CUDA_SUCCESS || getf(&f, m, "spin") != CUDA_SUCCESS) _exit(5);
  }
  auto launch = s.get<CUresult (*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                                   unsigned, unsigned, CUstream, void**, void**)>("cuLaunchKernel");
  void* params[] = {&out, &n};
  if (launch(f, 1, 1, 1, 1, 1, 1, 0, stream, params, nullptr) != CUDA_SUCCESS) _exit(6);
}

// Libraries are the stub's own objects until first use ships them: an unused one costs the
// worker nothing, a broken one fails at first use, a copied image survives its buffer, and
// handles are checked. The child reports the number of the first failed step (0: all passed).
TEST_P(WorkerTest, LibrariesShipOnFirstUse) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = spawnStubClient(worker_->address(), token_, fds[1], [](Stub& s, int fd) {
    using LoadFn = CUresult (*)(CUlibrary*, const void*, CUjit_option*, void**, unsigned,
                                CUlibraryOption*, void**, unsigned);
    auto load = s.get<LoadFn>("cuLibraryLoadData");
    auto getKernel = s.get<CUresult (*)(CUkernel*, CUlibrary, const char*)>("cuLibraryGetKernel");
    auto unload = s.get<CUresult (*)(CUlibrary)>("cuLibraryUnload");
    int step = 0;
    auto check = [&](bool ok) {
      ++step;
      if (!ok) {
        report(fd, static_cast<CUresult>(step));
        _exit(0);
      }
    };
    // Not preserved: the stub keeps a copy, so the caller may reuse its buffer at once.
    std::string text = kSpinPtx;
    CUlibrary a = nullptr, b = nullptr;
    CUkernel k = nullptr;
    check(load(&a, text.c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0) == CUDA_SUCCESS);
    std::fill(text.begin(), text.end(), 'x');
    check(getKernel(&k, a, "spin") == CUDA_SUCCESS && k != nullptr);
    check(getKernel(&k, a, "nope") == CUDA_ERROR_NOT_FOUND);
    // PTX that does not parse: the load succeeds (nothing is shipped yet), first use fails,
    // and keeps failing.
    static const char kBroken[] = ".version 7.0\n.target sm_50\n.address_size 64\n.entry x( {\n";
    CUlibraryOption keep = CU_LIBRARY_BINARY_IS_PRESERVED;
    void* yes = reinterpret_cast<void*>(1);
    check(load(&b, kBroken, nullptr, nullptr, 0, &keep, &yes, 1) == CUDA_SUCCESS);
    CUresult first = getKernel(&k, b, "x");
    check(first != CUDA_SUCCESS);
    check(getKernel(&k, b, "x") == first);
    check(unload(b) == CUDA_SUCCESS);
    check(unload(b) == CUDA_ERROR_INVALID_HANDLE);
    check(getKernel(&k, reinterpret_cast<CUlibrary>(0x1234), "spin") == CUDA_ERROR_INVALID_HANDLE);
    check(load(&b, nullptr, nullptr, nullptr, 0, nullptr, nullptr, 0) == CUDA_ERROR_INVALID_IMAGE);
    check(unload(a) == CUDA_SUCCESS);
    report(fd, CUDA_SUCCESS);
  });
  close(fds[1]);
  int32_t code = -1;
  pollfd p{fds[0], POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 20000), 1);
  ASSERT_EQ(read(fds[0], &code, 4), 4);
  EXPECT_EQ(code, 0) << "first failed step";
  finishChild(child);
  close(fds[0]);
  EXPECT_TRUE(worker_->alive());
}

TEST_P(WorkerTest, KillWorkerDuringSynchronousCall) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ChildLog log;
  pid_t child = spawnStubClient(worker_->address(), token_, fds[1], [&log](Stub& s, int fd) {
    log.redirect();
    auto alloc = s.get<CUresult (*)(CUdeviceptr*, size_t)>("cuMemAlloc_v2");
    auto sync = s.get<CUresult (*)()>("cuCtxSynchronize");
    CUdeviceptr out;
    if (alloc(&out, 4) != CUDA_SUCCESS) _exit(7);
    launchSpin(s, nullptr, out, 0x7fffffff); // many seconds of work
    (void)!write(fd, "R", 1);
    report(fd, sync());
    laterCall(s, fd);
  });
  close(fds[1]);
  FaultResult r = killWorkerDuring(*worker_, fds[0], 200);
  finishChild(child);
  close(fds[0]);
  EXPECT_EQ(r.first, CUDA_ERROR_DEVICE_UNAVAILABLE);
  EXPECT_EQ(r.later, CUDA_ERROR_DEVICE_UNAVAILABLE);
  EXPECT_LT(r.seconds, kLoadedMachineSlackS); // an error, not a hang
  const std::string why = log.text();
  EXPECT_NE(why.find("remote worker unavailable"), std::string::npos) << why;
  EXPECT_EQ(why.find("heartbeat"), std::string::npos)
      << "the dead worker was noticed by the heartbeat, not by its closed connection: " << why;
}

// A worker that hangs (SIGSTOP: its sockets stay open, the kernel still acknowledges) is found
// by the heartbeat on the host channel.
TEST_P(WorkerTest, HungWorkerDuringSynchronousCall) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ChildLog log;
  pid_t child = spawnStubClient(worker_->address(), token_, fds[1], [&log](Stub& s, int fd) {
    log.redirect();
    auto alloc = s.get<CUresult (*)(CUdeviceptr*, size_t)>("cuMemAlloc_v2");
    auto sync = s.get<CUresult (*)()>("cuCtxSynchronize");
    CUdeviceptr out;
    if (alloc(&out, 4) != CUDA_SUCCESS) _exit(7);
    launchSpin(s, nullptr, out, 0x7fffffff);
    (void)!write(fd, "R", 1);
    report(fd, sync());
    laterCall(s, fd);
  });
  close(fds[1]);
  FaultResult r = killWorkerDuring(*worker_, fds[0], 300, /*stopOnly=*/true);
  finishChild(child);
  close(fds[0]);
  EXPECT_EQ(r.first, CUDA_ERROR_DEVICE_UNAVAILABLE);
  EXPECT_EQ(r.later, CUDA_ERROR_DEVICE_UNAVAILABLE);
  // Not before the heartbeat's deadline (less the ping period: the last answer may be that
  // old), and not a hang.
  EXPECT_GE(r.seconds, kHeartbeatGivesUpS - 0.3);
  EXPECT_LT(r.seconds, kHeartbeatGivesUpS + kLoadedMachineSlackS);
  const std::string why = log.text();
  EXPECT_NE(why.find("the worker stopped answering its heartbeat"), std::string::npos) << why;
}

TEST_P(WorkerTest, KillWorkerDuringAsyncStream) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ChildLog log;
  pid_t child = spawnStubClient(worker_->address(), token_, fds[1], [&log](Stub& s, int fd) {
    log.redirect();
    auto alloc = s.get<CUresult (*)(CUdeviceptr*, size_t)>("cuMemAlloc_v2");
    auto create = s.get<CUresult (*)(CUstream*, unsigned)>("cuStreamCreate");
    auto sync = s.get<CUresult (*)(CUstream)>("cuStreamSynchronize");
    CUdeviceptr out;
    CUstream st;
    if (alloc(&out, 4) != CUDA_SUCCESS || create(&st, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) _exit(7);
    for (int i = 0; i < 200; ++i) launchSpin(s, st, out, 20000000); // posted, not waited for
    (void)!write(fd, "R", 1);
    report(fd, sync(st));
    laterCall(s, fd);
  });
  close(fds[1]);
  FaultResult r = killWorkerDuring(*worker_, fds[0], 200);
  finishChild(child);
  close(fds[0]);
  EXPECT_EQ(r.first, CUDA_ERROR_DEVICE_UNAVAILABLE);
  EXPECT_EQ(r.later, CUDA_ERROR_DEVICE_UNAVAILABLE);
  EXPECT_LT(r.seconds, kLoadedMachineSlackS); // an error, not a hang
  const std::string why = log.text();
  EXPECT_NE(why.find("remote worker unavailable"), std::string::npos) << why;
  EXPECT_EQ(why.find("heartbeat"), std::string::npos)
      << "the dead worker was noticed by the heartbeat, not by its closed connection: " << why;
}

// Synchronous 256 MiB copies, one way, until one fails or 15 s pass; "R" first, then the
// failing call's result. Over shared memory the stub copies these bytes through its mapping
// of the device memory (docs/remoting.md, "Pageable copies with one CPU copy").
void bigCopies(Stub& s, int fd, bool toHost) {
  auto alloc = s.get<CUresult (*)(CUdeviceptr*, size_t)>("cuMemAlloc_v2");
  auto htod = s.get<CUresult (*)(CUdeviceptr, const void*, size_t)>("cuMemcpyHtoD_v2");
  auto dtoh = s.get<CUresult (*)(void*, CUdeviceptr, size_t)>("cuMemcpyDtoH_v2");
  const size_t n = size_t(256) << 20;
  CUdeviceptr d;
  if (alloc(&d, n) != CUDA_SUCCESS) _exit(7);
  std::vector<uint8_t> buf(n, 1);
  (void)!write(fd, "R", 1);
  auto start = Clock::now();
  CUresult r = CUDA_SUCCESS;
  while (r == CUDA_SUCCESS && secondsSince(start) < 15)
    r = toHost ? dtoh(buf.data(), d, n) : htod(d, buf.data(), n);
  report(fd, r);
  laterCall(s, fd);
}

void killWorkerDuringBigCopies(WorkerProcess& w, const std::string& token, bool toHost) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ChildLog log;
  pid_t child = spawnStubClient(w.address(), token, fds[1], [&log, toHost](Stub& s, int fd) {
    log.redirect();
    bigCopies(s, fd, toHost);
  });
  close(fds[1]);
  FaultResult r = killWorkerDuring(w, fds[0], 300);
  finishChild(child);
  close(fds[0]);
  EXPECT_EQ(r.first, CUDA_ERROR_DEVICE_UNAVAILABLE);
  EXPECT_EQ(r.later, CUDA_ERROR_DEVICE_UNAVAILABLE);
  EXPECT_LT(r.seconds, kLoadedMachineSlackS); // an error, not a hang
  const std::string why = log.text();
  EXPECT_NE(why.find("remote worker unavailable"), std::string::npos) << why;
  EXPECT_EQ(why.find("heartbeat"), std::string::npos)
      << "the dead worker was noticed by the heartbeat, not by its closed connection: " << why;
}

TEST_P(WorkerTest, KillWorkerDuringBigCopy) { killWorkerDuringBigCopies(*worker_, token_, false); }
TEST_P(WorkerTest, KillWorkerDuringBigCopyToHost) { killWorkerDuringBigCopies(*worker_, token_, true); }

// The device's free memory as a client of the worker sees it.
uint64_t freeBytes(RawClient& c, uint64_t ctx) {
  uint64_t v[2] = {};
  EXPECT_EQ(c.call(FnId::cuMemGetInfo_v2, {}, ctx, v), CUDA_SUCCESS);
  return v[0];
}
// The same once it is back to `before`, or after `seconds`.
uint64_t freeBytesBackTo(RawClient& c, uint64_t ctx, uint64_t before, double seconds) {
  auto start = Clock::now();
  uint64_t now;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    now = freeBytes(c, ctx);
  } while (now != before && secondsSince(start) < seconds);
  return now;
}
// The child's "R" (it is about to block or loop).
bool childReady(int fd) {
  char ready = 0;
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 20000) == 1 && read(fd, &ready, 1) == 1 && ready == 'R';
}

// A client killed in the middle of its copies (over shared memory it is then copying through
// its mapping of the device memory): the worker lives on, frees what the client held and
// serves others.
TEST_P(WorkerTest, KillClientDuringBigCopies) {
  RawClient observer;
  ASSERT_EQ(observer.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctx = observer.context();
  const uint64_t before = freeBytes(observer, ctx);
  for (bool toHost : {false, true}) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t child = spawnStubClient(worker_->address(), token_, fds[1],
                                  [toHost](Stub& s, int fd) { bigCopies(s, fd, toHost); });
    close(fds[1]);
    ASSERT_TRUE(childReady(fds[0]));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    close(fds[0]);
  }
  EXPECT_EQ(freeBytesBackTo(observer, ctx, before, 10), before)
      << "the killed clients' allocations were not freed";
}

TEST_P(WorkerTest, KilledClientsMemoryIsFreed) {
  RawClient observer;
  ASSERT_EQ(observer.open(worker_->address(), token_), CUDA_SUCCESS);
  uint64_t ctx = observer.context();
  const uint64_t before = freeBytes(observer, ctx);

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const size_t n = size_t(256) << 20;
  pid_t child = spawnStubClient(worker_->address(), token_, fds[1], [n](Stub& s, int fd) {
    auto alloc = s.get<CUresult (*)(CUdeviceptr*, size_t)>("cuMemAlloc_v2");
    CUdeviceptr a, b;
    if (alloc(&a, n) != CUDA_SUCCESS || alloc(&b, n) != CUDA_SUCCESS) _exit(7);
    (void)!write(fd, "R", 1);
    for (;;) pause();
  });
  close(fds[1]);
  ASSERT_TRUE(childReady(fds[0]));
  EXPECT_LE(freeBytes(observer, ctx) + 2 * n, before) << "the client's allocations are not visible";
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(fds[0]);
  EXPECT_EQ(freeBytesBackTo(observer, ctx, before, 5), before);
}

INSTANTIATE_TEST_SUITE_P(Both, WorkerTest, ::testing::Values("tcp", "shm"));
INSTANTIATE_TEST_SUITE_P(Remapped, WorkerTest, ::testing::Values("tcp+remap", "shm+remap"),
                         [](const auto& info) { return info.param.substr(0, 3) + "_remap"; });

// VRAM tiers: a worker whose idle clients' memory leaves the device. On a 100 MiB device two
// clients of 64 MiB each fit only one at a time: the second gets its memory once the first has
// idled, the first's next call waits for room, and its bytes come back at the same address
// (over shm the memory also goes to disk before it comes back).
class TieredWorkerTest : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    setenv("TF_SOFTGPU_DEVICES", "H100:100MiB", 1);
    std::vector<std::string> extra = {"--freeze-idle-ms", "1500", "--thaw-wait-ms", "200"};
    if (GetParam() == "shm") extra.insert(extra.end(), {"--cold-after-ms", "200", "--cold-dir", "/tmp"});
    worker_ = std::make_unique<WorkerProcess>(GetParam(), token_, extra);
    ASSERT_FALSE(worker_->address().empty()) << "worker did not start";
  }
  std::string token_ = "test-token-" + std::to_string(getpid());
  std::unique_ptr<WorkerProcess> worker_;
};

TEST_P(TieredWorkerTest, IdleMemoryIsFreeForOthersAndComesBackAtTheSameAddress) {
  constexpr uint64_t kSize = 64ull << 20;
  RawClient a, b;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  ASSERT_EQ(b.open(worker_->address(), token_), CUDA_SUCCESS);
  const uint64_t ctxA = a.context(), ctxB = b.context();
  uint64_t pA = 0, pB = 0;
  ASSERT_EQ(a.call(FnId::cuMemAlloc_v2, {kSize}, ctxA, &pA), CUDA_SUCCESS);
  std::vector<uint8_t> bytes(kSize);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 131 + (i >> 20));
  ASSERT_EQ(a.call(FnId::cuMemcpyHtoD_v2, {pA, kSize}, ctxA, nullptr, nullptr, &bytes), CUDA_SUCCESS);

  // B asks until A's idle freeze has made room (it cannot before: 64 + 64 > 100 MiB).
  CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((r = b.call(FnId::cuMemAlloc_v2, {kSize}, ctxB, &pB)) == CUDA_ERROR_OUT_OF_MEMORY &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(r, CUDA_SUCCESS) << "A's idle memory never left the device";
  if (GetParam() == "shm") std::this_thread::sleep_for(std::chrono::milliseconds(600));  // A's goes to disk

  // A's next call needs its memory back while B holds the room: refused after the wait, nothing lost.
  std::vector<uint8_t> got;
  EXPECT_EQ(a.call(FnId::cuMemcpyDtoH_v2, {pA, 16}, ctxA, nullptr, &got), CUDA_ERROR_OUT_OF_MEMORY);
  ASSERT_EQ(b.call(FnId::cuMemFree_v2, {pB}, ctxB), CUDA_SUCCESS);
  ASSERT_EQ(a.call(FnId::cuMemcpyDtoH_v2, {pA, kSize}, ctxA, nullptr, &got), CUDA_SUCCESS);
  EXPECT_TRUE(got == bytes) << "the bytes came back changed";

  // Tiered memory is not exported by IPC handle (it would leave the device under the importer).
  EXPECT_EQ(a.call(FnId::cuIpcGetMemHandle, {pA}, ctxA), CUDA_ERROR_NOT_SUPPORTED);
  // Freed through the tiers: the room is B's again.
  ASSERT_EQ(a.call(FnId::cuMemFree_v2, {pA}, ctxA), CUDA_SUCCESS);
  EXPECT_EQ(a.call(FnId::cuMemFree_v2, {pA}, ctxA), CUDA_ERROR_INVALID_VALUE) << "freed twice";
  ASSERT_EQ(b.call(FnId::cuMemAlloc_v2, {kSize}, ctxB, &pB), CUDA_SUCCESS);
}

INSTANTIATE_TEST_SUITE_P(Both, TieredWorkerTest, ::testing::Values("tcp", "shm"));

} // namespace
} // namespace tf::remoting
