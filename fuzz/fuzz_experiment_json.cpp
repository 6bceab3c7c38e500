// libFuzzer harness: an experiment's JSON form (nets/experiment.h experiment_from_json),
// parsed from the input text. An experiment read back must survive a round trip.
#include "nets/experiment.h"

#include <exception>

#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const nlohmann::json j = nlohmann::json::parse(data, data + size);
    const detdl::nets::Experiment e = detdl::nets::experiment_from_json(j);
    const nlohmann::json back = detdl::nets::to_json(e);
    DETDL_FUZZ_CHECK(detdl::nets::to_json(detdl::nets::experiment_from_json(back)) == back);
  } catch (const std::exception&) {
  }
  return 0;
}
