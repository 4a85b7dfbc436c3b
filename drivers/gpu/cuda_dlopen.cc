// The CUDA runtime, loaded at run time. Only five entry points with stable C signatures are used;
// cudaDeviceProp is read through a generously sized buffer, taking only `name` (offset 0) and
// `totalGlobalMem` (offset 288), which have kept their place since CUDA 10 (checked against CUDA 13's
// driver_types.h, where the struct is 1008 bytes).
#include <dlfcn.h>

#include <array>
#include <cstring>

#include <fmt/format.h>

#include "drivers/gpu/gpu.h"

namespace edged::gpu {
namespace {

constexpr int kCudaSuccess = 0;
constexpr int kAttrComputeCapabilityMajor = 75;  // cudaDevAttrComputeCapabilityMajor
constexpr int kAttrComputeCapabilityMinor = 76;  // cudaDevAttrComputeCapabilityMinor
constexpr size_t kPropNameOffset = 0;
constexpr size_t kPropNameSize = 256;
constexpr size_t kPropTotalGlobalMemOffset = 288;
constexpr size_t kPropBufferSize = 16384;  // far above sizeof(cudaDeviceProp) in any CUDA release

using GetDeviceCountFn = int (*)(int*);
using GetDevicePropertiesFn = int (*)(void*, int);
using DeviceGetAttributeFn = int (*)(int*, int, int);
using VersionFn = int (*)(int*);
using DeviceGetPciBusIdFn = int (*)(char*, int, int);
using GetErrorStringFn = const char* (*)(int);

class DlopenCudaProbe : public CudaProbe {
 public:
  explicit DlopenCudaProbe(std::vector<std::string> libraries) : libraries_(std::move(libraries)) {
    if (libraries_.empty()) {
      libraries_ = {"libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0",
                    "/usr/local/cuda/lib64/libcudart.so"};
    }
  }

  // The library stays loaded for the life of the process on purpose: the CUDA runtime registers
  // exit-time handlers that point into it, and unloading it with dlclose() crashes at exit.
  ~DlopenCudaProbe() override = default;

  StatusOr<CudaInfo> Probe() override {
    if (handle_ == nullptr) {
      std::string tried;
      for (const std::string& lib : libraries_) {
        handle_ = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle_ != nullptr) break;
        tried += (tried.empty() ? "" : ", ") + lib;
      }
      if (handle_ == nullptr) {
        return UnavailableError(
            fmt::format("CUDA runtime not found (tried {}); GPU details come from the driver only", tried));
      }
    }
    auto count_fn = Get<GetDeviceCountFn>("cudaGetDeviceCount");
    auto props_fn = Get<GetDevicePropertiesFn>("cudaGetDeviceProperties");
    auto attr_fn = Get<DeviceGetAttributeFn>("cudaDeviceGetAttribute");
    auto runtime_fn = Get<VersionFn>("cudaRuntimeGetVersion");
    auto driver_fn = Get<VersionFn>("cudaDriverGetVersion");
    auto bus_fn = Get<DeviceGetPciBusIdFn>("cudaDeviceGetPCIBusId");
    auto error_fn = Get<GetErrorStringFn>("cudaGetErrorString");
    if (count_fn == nullptr || props_fn == nullptr || attr_fn == nullptr || runtime_fn == nullptr) {
      return UnavailableError("CUDA runtime lacks cudaGetDeviceCount/cudaGetDeviceProperties; too old?");
    }
    auto error_text = [&](int rc) {
      const char* s = error_fn != nullptr ? error_fn(rc) : nullptr;
      return fmt::format("{} (cudaError {})", s != nullptr ? s : "error", rc);
    };

    CudaInfo info;
    runtime_fn(&info.runtime_version);
    if (driver_fn != nullptr) driver_fn(&info.driver_version);
    int count = 0;
    if (int rc = count_fn(&count); rc != kCudaSuccess) {
      return UnavailableError("cudaGetDeviceCount: " + error_text(rc));
    }
    for (int i = 0; i < count; ++i) {
      CudaDevice d;
      d.index = i;
      std::vector<unsigned char> props(kPropBufferSize, 0);
      if (int rc = props_fn(props.data(), i); rc != kCudaSuccess) {
        return UnavailableError(fmt::format("cudaGetDeviceProperties({}): {}", i, error_text(rc)));
      }
      const char* name = reinterpret_cast<const char*>(props.data() + kPropNameOffset);
      d.name.assign(name, strnlen(name, kPropNameSize));
      std::memcpy(&d.memory_bytes, props.data() + kPropTotalGlobalMemOffset, sizeof d.memory_bytes);
      attr_fn(&d.compute_major, kAttrComputeCapabilityMajor, i);
      attr_fn(&d.compute_minor, kAttrComputeCapabilityMinor, i);
      if (bus_fn != nullptr) {
        std::array<char, 64> bus{};
        if (bus_fn(bus.data(), static_cast<int>(bus.size()), i) == kCudaSuccess) d.pci_bus_id = bus.data();
      }
      info.devices.push_back(std::move(d));
    }
    return info;
  }

 private:
  template <typename Fn>
  Fn Get(const char* symbol) const {
    return reinterpret_cast<Fn>(dlsym(handle_, symbol));
  }

  std::vector<std::string> libraries_;
  void* handle_ = nullptr;
};

}  // namespace

std::unique_ptr<CudaProbe> NewDlopenCudaProbe(std::vector<std::string> libraries) {
  return std::make_unique<DlopenCudaProbe>(std::move(libraries));
}

}  // namespace edged::gpu
