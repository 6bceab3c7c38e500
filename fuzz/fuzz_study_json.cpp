// libFuzzer harness: a study file in JSON (variance/study.h load_study on <name>.json, which
// parses the text and calls study_from_json).
#include "fuzz/fuzz_file.h"
#include "variance/study.h"

#include <exception>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const detdl::fuzz::TempFile file("study_json", data, size, ".json");
  try {
    const detdl::variance::Study s = detdl::variance::load_study(file.path());
    DETDL_FUZZ_CHECK(!s.name.empty() && !s.settings.empty() && s.repetitions >= 1);
  } catch (const std::exception&) {
  }
  return 0;
}
