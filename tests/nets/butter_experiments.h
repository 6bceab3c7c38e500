// The BUTTER experiments of the batched trainer's tests (test_butter_batched.cpp,
// test_batched_checkpoint.cpp): a net on one of ../shared/data's sets with BUTTER's Keras
// Adam, and R repetitions of it that differ in every seed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nets/experiment.h"

namespace detdl::nets::test_butter {

// butter:<shape>:<depth>:<size> on `data`, 2 epochs, batch 256, Keras's Adam at 1e-3, 2 threads.
inline Experiment butter(const std::string& data, const std::string& shape, int depth, int size) {
  Experiment e;
  e.net = "butter:" + shape + ":" + std::to_string(depth) + ":" + std::to_string(size);
  e.data = data;
  e.data_dir = DETDL_SHARED_DIR "/data";
  e.epochs = 2;
  e.batch_size = 256;
  e.optimizer.kind = OptimizerConfig::Kind::adam;
  e.optimizer.eps = 1e-7f;
  e.optimizer.keras_form = true;
  e.schedule.base_lr = 1e-3f;
  e.threads = 2;
  return e;
}

// R copies of e, repetition r with every seed its own (from first_seed + r).
inline std::vector<Experiment> repetitions(const Experiment& e, int R,
                                           std::uint64_t first_seed = 100) {
  std::vector<Experiment> es(static_cast<std::size_t>(R), e);
  for (int r = 0; r < R; ++r) {
    const std::uint64_t s = first_seed + static_cast<std::uint64_t>(r);
    es[static_cast<std::size_t>(r)].seeds = {s, s + 10, s + 20, s + 30, s + 40, s + 50};
  }
  return es;
}

}  // namespace detdl::nets::test_butter
