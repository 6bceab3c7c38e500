// libFuzzer harness: the IDX loader (nets/data/idx.h read_idx), gzipped or plain input.
#include "fuzz/fuzz_file.h"
#include "nets/data/idx.h"

#include <exception>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const detdl::fuzz::TempFile file("idx", data, size, ".idx");
  try {
    const detdl::data::IdxArray a = detdl::data::read_idx(file.path());
    std::uint64_t count = 1;
    for (const std::int64_t d : a.dims) count *= static_cast<std::uint64_t>(d);
    DETDL_FUZZ_CHECK(!a.dims.empty() && a.dims.size() <= 8 && count == a.bytes.size());
  } catch (const std::exception&) {
    // an expected error: the file is refused with a message
  }
  return 0;
}
