// libFuzzer harness: the PMLB TSV loader and BUTTER's preparation (nets/data/pmlb.h
// load_pmlb). The first byte picks the task (inferred, regression, binary, multiclass); the
// rest is the .tsv file (plain or gzipped).
#include "fuzz/fuzz_file.h"
#include "nets/data/pmlb.h"

#include <cmath>
#include <exception>
#include <optional>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  using detdl::data::Task;
  const std::optional<Task> tasks[] = {std::nullopt, Task::regression, Task::binary,
                                       Task::multiclass};
  const std::optional<Task> task = tasks[data[0] % 4];
  const detdl::fuzz::TempFile file("pmlb", data + 1, size - 1, ".tsv");
  try {
    const detdl::data::TabularData t = detdl::data::load_pmlb(file.path(), task);
    const std::int64_t n = t.all.x.dim(0);
    DETDL_FUZZ_CHECK(n >= 1 && t.n_inputs >= 1 && t.all.x.dim(1) == t.n_inputs);
    DETDL_FUZZ_CHECK(t.input_columns.size() == static_cast<std::size_t>(t.n_inputs));
    // Every prepared input is 0/1 or min-max scaled: in [0, 1].
    const float* x = t.all.x.f32();
    for (std::int64_t i = 0; i < t.all.x.numel(); ++i)
      DETDL_FUZZ_CHECK(x[i] >= 0.0f && x[i] <= 1.0f);
    if (t.task == Task::multiclass) {
      const std::int32_t* y = t.all.y.i32();
      for (std::int64_t i = 0; i < n; ++i) DETDL_FUZZ_CHECK(y[i] >= 0 && y[i] < t.n_outputs);
    } else {
      // (n, n_outputs): one column, or a regression target's one-hot columns.
      DETDL_FUZZ_CHECK(t.all.y.numel() == n * t.n_outputs);
      const float* y = t.all.y.f32();
      for (std::int64_t i = 0; i < n * t.n_outputs; ++i)
        DETDL_FUZZ_CHECK(y[i] >= 0.0f && y[i] <= 1.0f);
    }
  } catch (const std::exception&) {
  }
  return 0;
}
