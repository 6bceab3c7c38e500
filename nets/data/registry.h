// Data sets by name: one call resolves a name or path, loads and prepares the data once
// per process, and hands every run the same read-only bundle (a study running runs in
// threads shares one copy; a run that needs its own targets, e.g. with label noise, copies
// only y).
//
// Names (docs/cli.md lists them with examples):
//   blobs, bars                     generated (the engine's test sets; no files)
//   synthetic-mnist[:N], synthetic-cifar10[:N], synthetic-cifar100[:N]
//                                   generated images of MNIST/CIFAR shape (N training rows)
//   mnist, fashion-mnist            IDX files under <root>/mnist, /usr/share/datasets/fashion-mnist
//   cifar10[:DIR], cifar100[:DIR]   CIFAR binary files (DIR default <root>/cifar-10-batches-bin, ...)
//   pmlb:NAME or NAME               <root>/pmlb/NAME/NAME.tsv.gz with BUTTER's preparation
//   PATH                            a .tsv/.tsv.gz (PMLB) file or an IDX directory
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/dataset.h"
#include "nets/data/pmlb.h"

namespace detdl::data {

struct DataOptions {
  std::string root;          // where named data sets live; empty: data_root()
  bool study_split = false;  // image sets: validation = first 7,500 test rows, test = the rest
  std::string preprocess = "none";  // none | pixel-mean | channel-std (dl-variance's ResNet / WRN)
  std::uint64_t split_seed = 1;     // tabular sets: the 80/20 shuffled split
  double test_fraction = 0.2;

  std::string key(const std::string& spec) const;  // the cache key
};

struct DataBundle {
  std::string name;    // as given
  std::string source;  // what was read (paths) or "generated"
  Task task = Task::multiclass;
  std::int64_t outputs = 0;  // classes (multiclass) or output width
  LossKind loss = LossKind::softmax_ce;
  Shape sample_shape;  // one input row, e.g. (1, 28, 28) or (11)
  Dataset train, test;
  bool has_validation = false;
  Dataset validation;
};

// The default root for named data sets: $DETDL_DATA_DIR, else ../shared/data from the
// working directory, else ../../shared/data from the executable's directory (a build tree
// inside the checkout).
std::string data_root();

// Loads (or returns the cached) bundle. Throws std::invalid_argument for an unknown name
// and std::runtime_error (naming the file) for unreadable or malformed data.
std::shared_ptr<const DataBundle> load_data(const std::string& spec, const DataOptions& opt = {});

// Names accepted without a path (for --help and errors).
std::vector<std::string> known_data_names();

}  // namespace detdl::data
