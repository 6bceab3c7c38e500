// Weight hashes: the identity of a model's state, printed by every run and compared by the
// determinism tests and golden files. FNV-1a 64 over, for each tensor in order, its name,
// its shape (as 8-byte little-endian sizes) and its raw little-endian bytes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace detdl {

class Fnv1a64 {
 public:
  void update(const void* data, std::size_t n);
  void update_tensor(const std::string& name, const Tensor& t);
  std::uint64_t value() const { return h_; }
  std::string hex() const;

 private:
  std::uint64_t h_ = 0xcbf29ce484222325ull;
};

std::string hex64(std::uint64_t v);

}  // namespace detdl
