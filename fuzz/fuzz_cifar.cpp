// libFuzzer harness: the CIFAR binary loader (nets/data/cifar.h read_cifar_file). The first
// byte picks the kind (CIFAR-10, CIFAR-100 fine, CIFAR-100 coarse); the rest is the file.
#include "fuzz/fuzz_file.h"
#include "nets/data/cifar.h"

#include <exception>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  using detdl::data::CifarKind;
  const CifarKind kinds[] = {CifarKind::cifar10, CifarKind::cifar100_fine,
                             CifarKind::cifar100_coarse};
  const CifarKind kind = kinds[data[0] % 3];
  const detdl::fuzz::TempFile file("cifar", data + 1, size - 1, ".bin");
  try {
    const detdl::Dataset d = detdl::data::read_cifar_file(file.path(), kind);
    const std::int64_t n = d.x.dim(0);
    DETDL_FUZZ_CHECK(n >= 1 && d.x.ndim() == 4 && d.x.dim(1) == 3 && d.x.dim(2) == 32 &&
                     d.x.dim(3) == 32);
    DETDL_FUZZ_CHECK(d.y.numel() == n);
    const std::int32_t* y = d.y.i32();
    for (std::int64_t i = 0; i < n; ++i)
      DETDL_FUZZ_CHECK(y[i] >= 0 && y[i] < detdl::data::cifar_classes(kind));
  } catch (const std::exception&) {
  }
  return 0;
}
