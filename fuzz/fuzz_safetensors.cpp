// libFuzzer harness: a checkpoint in the safetensors format (engine/checkpoint.h
// load_safetensors).
#include "engine/checkpoint.h"

#include <exception>

#include "fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const detdl::fuzz::TempFile file("safetensors", data, size, ".safetensors");
  try {
    const detdl::TensorFile f = detdl::load_safetensors(file.path());
    // Every tensor's elements come from the file: together no more than size / 4 of them
    // (a count compared without multiplying, so a wrapped size cannot pass).
    std::uint64_t elements = 0;
    for (const auto& [name, t] : f.tensors) {
      DETDL_FUZZ_CHECK(name != "__metadata__");
      DETDL_FUZZ_CHECK(t.numel() >= 0 && static_cast<std::uint64_t>(t.numel()) <= size / 4);
      elements += static_cast<std::uint64_t>(t.numel());
    }
    DETDL_FUZZ_CHECK(elements <= size / 4);
  } catch (const std::exception&) {
  }
  return 0;
}
