// libFuzzer harness: opening a study store (variance/store.h Store) on a file of fuzzed
// bytes, then reading back everything it holds: studies, runs (epochs, class accuracy,
// predictions), each run's record, weights and per-epoch predictions.
#include "variance/store.h"

#include <exception>

#include "fuzz/fuzz_file.h"

namespace {

template <class F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const std::exception&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const detdl::fuzz::TempFile file("store", data, size, ".sqlite", {"-wal", "-shm", "-journal"});
  try {
    detdl::variance::Store store(file.path());
    for (const std::string& study : store.studies()) {
      expect_clean([&] { (void)store.study_spec(study); });
      std::vector<detdl::variance::StoredRun> runs;
      expect_clean([&] { runs = store.runs(study); });
      for (const auto& run : runs) {
        for (std::size_t i = 0; i < run.epochs.size(); ++i)
          DETDL_FUZZ_CHECK(run.epochs[i].epoch == static_cast<std::int64_t>(i) + 1);
        expect_clean([&] { (void)store.run(run.key); });
        expect_clean([&] { (void)store.record(run.key); });
        expect_clean([&] { (void)store.weights(run.key); });
        expect_clean([&] {
          (void)store.predictions_at(run.key, static_cast<std::int64_t>(run.epochs.size()));
        });
        expect_clean([&] { (void)store.predictions_at(run.key, 1); });
      }
    }
  } catch (const std::exception&) {
  }
  return 0;
}
