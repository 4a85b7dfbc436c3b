// NVIDIA GPUs as the node sees them: the kernel driver's view under /proc/driver/nvidia (present
// whenever the driver is loaded, even in a container without CUDA), the /dev/nvidia* nodes a pod needs,
// and the CUDA runtime's view (name, memory, compute capability) where libcudart can be loaded.
// libcudart is opened with dlopen, so edged neither links nor needs CUDA.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace edged::gpu {

struct CudaDevice {
  int index = 0;
  std::string name;  // "NVIDIA GeForce RTX 3090"
  std::uint64_t memory_bytes = 0;
  int compute_major = 0;
  int compute_minor = 0;
  std::string pci_bus_id;  // "0000:01:00.0", to join with the driver's view
  bool operator==(const CudaDevice&) const = default;
};

struct CudaInfo {
  int runtime_version = 0;  // 12040 for CUDA 12.4
  int driver_version = 0;   // the newest CUDA the installed driver supports
  std::vector<CudaDevice> devices;
  bool operator==(const CudaInfo&) const = default;
};

// The CUDA runtime behind an interface: the real one dlopens libcudart, tests use a fake.
class CudaProbe {
 public:
  virtual ~CudaProbe() = default;
  // Unavailable when there is no runtime library, no driver, or no device; the message says which.
  virtual StatusOr<CudaInfo> Probe() = 0;
};

// Tries each of `libraries` (sonames or paths) with dlopen; empty = the usual sonames
// (libcudart.so, libcudart.so.13, .12, .11) and /usr/local/cuda/lib64/libcudart.so.
std::unique_ptr<CudaProbe> NewDlopenCudaProbe(std::vector<std::string> libraries = {});

struct GpuInfo {
  std::string bus_location;  // "0000:01:00.0"
  std::string model;         // "NVIDIA GeForce RTX 3090"
  std::string uuid;          // "GPU-..."
  int device_minor = -1;     // /dev/nvidia<minor>
  std::uint64_t memory_bytes = 0;  // from CUDA; 0 when unknown
  int compute_major = 0;           // from CUDA; 0 when unknown
  int compute_minor = 0;
  bool operator==(const GpuInfo&) const = default;
};

struct GpuInventory {
  std::string driver_version;  // "535.129.03"; empty when the driver is not loaded
  std::vector<GpuInfo> gpus;   // sorted by bus location
  std::vector<std::string> device_nodes;  // "/dev/nvidia0", "/dev/nvidiactl", ... sorted
  int cuda_runtime_version = 0;  // 0 when the runtime could not be loaded
  std::string cuda_error;        // why CUDA gave nothing, for the log; empty when it worked
  bool operator==(const GpuInventory&) const = default;
};

// Parses /proc/driver/nvidia/gpus/<bus>/information ("Model: \t\t NVIDIA ..." lines).
// InvalidArgument when there is no Model line.
StatusOr<GpuInfo> ParseNvidiaInformation(std::string_view text);

// The version number in /proc/driver/nvidia/version ("NVRM version: NVIDIA UNIX x86_64 Kernel Module
// 535.129.03 ..."; the open module says "Open Kernel Module for x86_64  550.54.14"). "" if none.
std::string ParseNvidiaDriverVersion(std::string_view text);

// Reads <proc_root>/driver/nvidia and <dev_root>/nvidia*, then joins what `cuda` (may be null) reports
// by PCI bus id (or by order when the driver tree is absent, e.g. in a container without /proc access).
GpuInventory ScanGpus(const std::string& proc_root, const std::string& dev_root, CudaProbe* cuda);

}  // namespace edged::gpu
