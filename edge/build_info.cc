#include "edge/process_metrics.h"

namespace edged {

const char* EdgedVersion() { return EDGED_VERSION; }

bool BuiltWithCuda() {
#ifdef EDGED_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace edged
