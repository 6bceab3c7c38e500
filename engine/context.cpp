#include "engine/context.h"

namespace detdl {
RunContext& context() {
  thread_local RunContext c;
  return c;
}
}  // namespace detdl
