#include "base/module.h"

namespace edged {

std::string_view HealthStateName(HealthState state) {
  switch (state) {
    case HealthState::kOk:
      return "ok";
    case HealthState::kWarning:
      return "warning";
    case HealthState::kFailed:
      return "failed";
  }
  return "unknown";
}

}  // namespace edged
