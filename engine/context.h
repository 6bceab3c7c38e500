// The per-thread run context: which determinism level each op family runs at, whether the
// model is training, and the dropout stream's keys. A training run sets it once; a study
// running several runs in threads gives each its own.
#pragma once
#include <array>
#include <cstdint>

#include <optional>

#include "kernels/common/impl_choice.h"
#include "kernels/common/level.h"

namespace detdl {

// Whose kernels a CUDA run uses: the engine's own (every level's contract holds), or the
// vendor libraries for comparison (cuBLAS for matmul: FP32, TF32 at `fast`; cuDNN for
// convolution with symmetric padding and batch norm with the unbiased running variance),
// which are never `portable` whatever the level says.
// Tensors on the CPU always use the own kernels: run_experiment rejects `vendor` with a
// CPU device (docs/gpu.md).
enum class Implementation : std::uint8_t { own, vendor };

struct RunContext {
  std::array<Level, kOpFamilyCount> level_of{};  // all portable by default
  bool training = true;
  std::uint64_t dropout_seed = 0;
  std::uint32_t step = 0;           // optimizer step: part of the dropout counter
  std::uint32_t dropout_layer = 0;  // counts dropout calls within a step (reset per step)
  Implementation implementation = Implementation::own;

  // The `emulated` level (kernels/common/impl_choice.h): which implementation families draw
  // their implementation from impl_seed, and each family's calls so far in this step (the
  // op's place, reset by begin_step_places at every training step and evaluation batch).
  std::uint64_t impl_seed = 0;
  std::array<bool, kImplFamilyCount> emulate{};
  std::array<std::uint32_t, kImplFamilyCount> impl_place{};

  // Level::emulated means portable kernels everywhere, every family emulated.
  void set_level(Level l) {
    level_of.fill(l == Level::emulated ? Level::portable : l);
    emulate.fill(l == Level::emulated);
  }
  Level level(OpFamily f) const { return level_of[static_cast<int>(f)]; }
  bool emulated(ImplFamily f) const { return emulate[static_cast<int>(f)]; }
  bool any_emulated() const {
    for (bool b : emulate)
      if (b) return true;
    return false;
  }
  void begin_step_places() { impl_place.fill(0); }

  // The draw for this call of a family's op, or nullopt when the family is not emulated (run
  // the canonical kernel). Each call takes the next place: call it once per kernel call, in
  // an order that does not depend on threads (the op's own code, never inside a kernel).
  std::optional<ImplDraw> impl_draw(ImplFamily f) {
    if (!emulated(f)) return std::nullopt;
    return ImplDraw{impl_seed, f, impl_place[static_cast<int>(f)]++, step};
  }
};

RunContext& context();  // this thread's

// Sets this thread's context for the guard's lifetime.
class ContextGuard {
 public:
  explicit ContextGuard(const RunContext& c) : saved_(context()) { context() = c; }
  ~ContextGuard() { context() = saved_; }
  ContextGuard(const ContextGuard&) = delete;
  ContextGuard& operator=(const ContextGuard&) = delete;

 private:
  RunContext saved_;
};

}  // namespace detdl
