// Regression tests for what fuzz_store (fuzz/, docs/fuzzing.md) found: corrupt store files
// whose counts asked for terabytes before anything was checked. Each test opens a copy of
// the committed input from fuzz/corpus/fuzz_store/ and reads it back as the harness does;
// the read must fail with a std::runtime_error naming the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/fuzz_corpus.h"
#include "variance/store.h"

namespace fs = std::filesystem;
using detdl::test_util::error_of;
using detdl::variance::Store;

namespace {

// A private copy: opening a store switches it to WAL and may write.
fs::path copy_of(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("detdl_storefuzz_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path p = dir / name;
  fs::copy_file(detdl::test_util::corpus_file("fuzz_store", name), p,
                fs::copy_options::overwrite_existing);
  return p;
}

}  // namespace

// runs.epochs = 10^12: load_runs resized the epoch vector to it (ASan:
// allocation-size-too-big in Store::load_runs).
TEST(StoreFuzzRegressions, HugeEpochCountIsRefused) {
  const fs::path p = copy_of("crash-huge-epoch-count.sqlite");
  Store store(p.string());
  const std::string msg = error_of([&] { store.runs("st"); });
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("implausible epoch count 1000000000000"), std::string::npos) << msg;
  EXPECT_EQ(store.run("k1").epochs.size(), 2u);  // the intact run still reads
  fs::remove_all(p.parent_path());
}

// A predictions blob whose header claims 2^32 values of 4 bytes: 16 GiB was allocated
// before zlib was asked (libFuzzer: out-of-memory (malloc(17179869184))).
TEST(StoreFuzzRegressions, PredictionsBlobClaimingMoreThanZlibCanGiveIsRefused) {
  const fs::path p = copy_of("crash-huge-predictions-count.sqlite");
  Store store(p.string());
  const std::string msg = error_of([&] { store.run("k2"); });
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("corrupt compressed blob"), std::string::npos) << msg;
  fs::remove_all(p.parent_path());
}

// A record blob whose length header says 2^36 bytes (ASan: out of memory in unpack_text).
TEST(StoreFuzzRegressions, RecordClaimingMoreThanZlibCanGiveIsRefused) {
  const fs::path p = copy_of("crash-huge-record-length.sqlite");
  Store store(p.string());
  const std::string msg = error_of([&] { store.record("k2"); });
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("corrupt compressed blob"), std::string::npos) << msg;
  fs::remove_all(p.parent_path());
}
