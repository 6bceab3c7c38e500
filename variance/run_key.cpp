#include "variance/run_key.h"

#include "engine/hash.h"

namespace detdl::variance {

std::string run_key(const nlohmann::json& experiment) {
  // nlohmann::json objects are std::map-backed: dump() sorts keys, so the text is canonical.
  const std::string text = experiment.dump();
  Fnv1a64 h;
  h.update(text.data(), text.size());
  return h.hex();
}

}  // namespace detdl::variance
