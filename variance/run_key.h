// The stable key of a run: a hash of its experiment's canonical JSON (keys sorted, numbers
// printed the same way every time). A run is a pure function of its experiment, so two
// rows with the same key are the same run: the runner skips a key already in the store.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace detdl::variance {

// 16 hex digits (FNV-1a 64 of the canonical dump), e.g. "3f9a0c1d2b4e5f60".
std::string run_key(const nlohmann::json& experiment);

}  // namespace detdl::variance
