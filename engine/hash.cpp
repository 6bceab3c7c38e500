#include "engine/hash.h"

#include <cstdio>

namespace detdl {

void Fnv1a64::update(const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    h_ ^= p[i];
    h_ *= 0x100000001b3ull;
  }
}

void Fnv1a64::update_tensor(const std::string& name, const Tensor& t) {
  update(name.data(), name.size());
  for (auto d : t.shape()) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i)
      b[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(d) >> (8 * i));
    update(b, 8);
  }
  const Tensor host = t.to(Device::cpu);  // a device tensor hashes its bytes copied back
  update(host.impl().storage->data, static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
}

std::string hex64(std::uint64_t v) {
  char s[17];
  std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(v));
  return s;
}

std::string Fnv1a64::hex() const { return hex64(h_); }

}  // namespace detdl
