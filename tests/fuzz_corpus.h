// For the fuzz regression tests: a committed fuzz input (fuzz/corpus/HARNESS/NAME), and the
// message of the std::exception a call throws.
#pragma once
#include <exception>
#include <string>

namespace detdl::test_util {

inline std::string corpus_file(const std::string& harness, const std::string& name) {
  return std::string(DETDL_SOURCE_DIR) + "/fuzz/corpus/" + harness + "/" + name;
}

// The message of the std::exception `f` throws ("" when it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace detdl::test_util
