#include "engine/dataset.h"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace detdl {

std::string_view loss_name(LossKind k) {
  switch (k) {
    case LossKind::softmax_ce: return "softmax_ce";
    case LossKind::bce: return "bce";
    case LossKind::mse: return "mse";
    case LossKind::keras_ce: return "keras_ce";
  }
  return "?";
}

Tensor gather_rows(const Tensor& t, const std::int64_t* idx, std::int64_t count) {
  if (t.device() != Device::cpu)
    throw std::invalid_argument("data sets stay on the host: gather_rows of a tensor on " +
                                std::string(device_name(t.device())));
  Shape s = t.shape();
  s[0] = count;
  Tensor out = Tensor::empty(s, t.dtype());
  const std::size_t row = static_cast<std::size_t>(t.numel() / t.dim(0)) * dtype_size(t.dtype());
  const auto* src = static_cast<const char*>(t.impl().storage->data);
  auto* dst = static_cast<char*>(out.impl().storage->data);
  if (row % 4 == 0 && row <= 64) {
    // Narrow rows (a label, a PMLB row of a few features): a plain loop of 4-byte words. A
    // libc memcpy per row cost 5% of a BUTTER run's time at 44-byte rows.
    const std::int64_t words = static_cast<std::int64_t>(row / 4);
    const auto* s4 = reinterpret_cast<const std::uint32_t*>(src);
    auto* d4 = reinterpret_cast<std::uint32_t*>(dst);
    // The rows are far apart (a shuffled order): ask for the row kAhead rows on while this
    // one is copied, both of its cache lines, so the loads do not wait one after the other.
    constexpr std::int64_t kAhead = 8;
    for (std::int64_t i = 0; i < count; ++i) {
      if (i + kAhead < count) {
        const std::uint32_t* next = s4 + idx[i + kAhead] * words;
        __builtin_prefetch(next);
        __builtin_prefetch(next + words - 1);
      }
      for (std::int64_t k = 0; k < words; ++k) d4[i * words + k] = s4[idx[i] * words + k];
    }
    return out;
  }
  for (std::int64_t i = 0; i < count; ++i) std::memcpy(dst + i * row, src + idx[i] * row, row);
  return out;
}

Dataset slice_rows(const Dataset& d, std::int64_t begin, std::int64_t end) {
  if (begin < 0 || end > d.size() || begin > end)
    throw std::out_of_range("slice_rows: [" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") of a data set of " + std::to_string(d.size()));
  std::vector<std::int64_t> idx;
  for (std::int64_t i = begin; i < end; ++i) idx.push_back(i);
  return {gather_rows(d.x, idx.data(), end - begin), gather_rows(d.y, idx.data(), end - begin)};
}

Dataset take_rows(const Dataset& d, const std::vector<std::int64_t>& rows) {
  if (d.x.dim(0) != d.y.dim(0))
    throw std::invalid_argument("take_rows: x has " + std::to_string(d.x.dim(0)) + " rows, y " +
                                std::to_string(d.y.dim(0)));
  for (auto r : rows)
    if (r < 0 || r >= d.size())
      throw std::out_of_range("take_rows: row " + std::to_string(r) + " of a data set of " +
                              std::to_string(d.size()));
  const auto count = static_cast<std::int64_t>(rows.size());
  return {gather_rows(d.x, rows.data(), count), gather_rows(d.y, rows.data(), count)};
}

}  // namespace detdl
