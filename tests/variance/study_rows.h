// A study store's rows in a form two stores can be compared by: key -> setting, repetition,
// weight hash, epochs, a digest of the record without its clock readings, and the number
// of final weights stored. Two runs of one plan row differ only in their clock readings,
// so equal maps mean the same runs, row for row. For the tests of the runners.
#pragma once
#include <functional>
#include <map>
#include <string>

#include "variance/store.h"

namespace detdl::test_util {

inline std::map<std::string, std::string> study_rows(const std::string& store,
                                                     const std::string& study) {
  std::map<std::string, std::string> out;
  variance::Store s(store);
  for (const auto& r : s.runs(study)) {
    nlohmann::json rec = s.record(r.key);
    for (const char* clock : {"started_at", "timings", "host"}) rec.erase(clock);
    for (auto& e : rec["epochs"])
      for (const char* clock : {"seconds", "train_seconds", "test_seconds", "validation_seconds"})
        e.erase(clock);
    out[r.key] = r.setting + "/" + std::to_string(r.repetition) + "/" + r.weight_hash + "/" +
                 std::to_string(r.epochs.size()) + "/record " +
                 std::to_string(std::hash<std::string>{}(rec.dump())) + "/weights " +
                 std::to_string(s.weights(r.key).size());
  }
  return out;
}

}  // namespace detdl::test_util
