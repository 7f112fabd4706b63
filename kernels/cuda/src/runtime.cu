// Device, stream, memory and errors. Memory comes from CUDA's stream-ordered pool allocator
// (cudaMallocAsync) with its release threshold raised, so freed blocks are cached and reused in
// stream order without device-wide synchronization.
#include "common.cuh"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <mutex>

namespace tr {
namespace {
cudaStream_t g_stream = nullptr;
std::string g_error;
std::string g_info;
std::once_flag g_once;

void init() {
  std::call_once(g_once, [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
      set_error("cudaGetDeviceCount", __FILE__, __LINE__, "no CUDA device is visible");
      return;
    }
    TR_CUDA(cudaSetDevice(0));
    TR_CUDA(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
    cudaMemPool_t pool;
    TR_CUDA(cudaDeviceGetDefaultMemPool(&pool, 0));
    uint64_t threshold = UINT64_MAX;
    TR_CUDA(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  });
}
}  // namespace

cudaStream_t stream() {
  init();
  return g_stream;
}

void set_error(const char* what, const char* file, int line, const char* msg) {
  if (!g_error.empty()) return;
  char buf[512];
  const char* base = std::strrchr(file, '/');
  std::snprintf(buf, sizeof buf, "%s failed at %s:%d: %s", what, base ? base + 1 : file, line, msg);
  g_error = buf;
}

bool has_error() { return !g_error.empty(); }
}  // namespace tr

using namespace tr;

TR_API const char* tr_error() { return g_error.c_str(); }

TR_API int tr_device_ok() {
  stream();
  return has_error() ? 0 : 1;
}

TR_API void* tr_malloc(int64_t bytes) {
  if (bytes <= 0) return nullptr;
  void* p = nullptr;
  cudaError_t e = cudaMallocAsync(&p, (size_t)bytes, stream());
  if (e != cudaSuccess) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "%s (asked for %lld bytes)", cudaGetErrorString(e), (long long)bytes);
    set_error("cudaMallocAsync", __FILE__, __LINE__, msg);
    return nullptr;
  }
  return p;
}

TR_API void tr_free(void* p) {
  if (p) TR_CUDA(cudaFreeAsync(p, stream()));
}

// Host to device. A pageable source is staged before the call returns, so the caller may reuse it.
TR_API void tr_h2d(void* dst, const void* src, int64_t bytes) {
  if (bytes > 0) TR_CUDA(cudaMemcpyAsync(dst, src, (size_t)bytes, cudaMemcpyHostToDevice, stream()));
}

// Device to host: the one place the training loop waits for the GPU.
TR_API void tr_d2h(void* dst, const void* src, int64_t bytes) {
  if (bytes > 0) TR_CUDA(cudaMemcpyAsync(dst, src, (size_t)bytes, cudaMemcpyDeviceToHost, stream()));
  TR_CUDA(cudaStreamSynchronize(stream()));
}

TR_API void tr_d2d(void* dst, const void* src, int64_t bytes) {
  if (bytes > 0) TR_CUDA(cudaMemcpyAsync(dst, src, (size_t)bytes, cudaMemcpyDeviceToDevice, stream()));
}

TR_API void tr_sync() { TR_CUDA(cudaStreamSynchronize(stream())); }

TR_API void tr_set_num_threads(int) {}
TR_API int tr_get_num_threads() { return 1; }

extern "C" int tr_tf32_enabled();
namespace tr { namespace tc { const char* bf16_forward_rule(); } }  // attention_hopper.cu

TR_API const char* tr_info() {
  stream();
  cudaDeviceProp p{};
  int rt = 0, drv = 0;
  cudaGetDeviceProperties(&p, 0);
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);
  char buf[512];
  std::snprintf(buf, sizeof buf, "device=%s;sm=%d%d;sms=%d;memGiB=%.1f;cudaRuntime=%d;cudaDriver=%d;matmul=cublas;tf32=%d;bf16Attention=%s",
                p.name, p.major, p.minor, p.multiProcessorCount, p.totalGlobalMem / 1073741824.0, rt, drv, tr_tf32_enabled(), tr::tc::bf16_forward_rule());
  g_info = buf;
  return g_info.c_str();
}
