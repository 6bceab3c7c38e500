#include "nets/data/registry.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <future>
#include <mutex>
#include <stdexcept>

#include "nets/data/cifar.h"
#include "nets/data/idx.h"
#include "nets/data/prepare.h"
#include "nets/synthetic.h"

namespace detdl::data {
namespace fs = std::filesystem;

std::string DataOptions::key(const std::string& spec) const {
  return spec + "|root=" + root + "|study=" + std::to_string(study_split) + "|pre=" + preprocess +
         "|split=" + std::to_string(split_seed) + "|frac=" + std::to_string(test_fraction);
}

std::string data_root() {
  if (const char* env = std::getenv("DETDL_DATA_DIR"); env && *env) return env;
  if (fs::is_directory("../shared/data"))
    return fs::absolute("../shared/data").lexically_normal().string();
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path p = exe.parent_path() / "../../shared/data";
    if (fs::is_directory(p)) return fs::weakly_canonical(p).string();
  }
  return "../shared/data";
}

std::vector<std::string> known_data_names() {
  return {"blobs",
          "bars",
          "synthetic-mnist[:N]",
          "synthetic-cifar10[:N]",
          "synthetic-cifar100[:N]",
          "mnist",
          "fashion-mnist",
          "cifar10[:DIR]",
          "cifar100[:DIR]",
          "pmlb:NAME",
          "pmlb:mnist",
          "a PMLB .tsv(.gz) file",
          "an IDX directory"};
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "name:arg" -> ("name", "arg").
std::pair<std::string, std::string> split_spec(const std::string& spec) {
  const auto colon = spec.find(':');
  if (colon == std::string::npos) return {spec, ""};
  return {spec.substr(0, colon), spec.substr(colon + 1)};
}

std::int64_t parse_count(const std::string& spec, const std::string& arg, std::int64_t fallback) {
  if (arg.empty()) return fallback;
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(arg, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  // At most 2^20 generated rows (a 32x32x3 set of that size is 12 GiB): a typo of a few
  // digits is refused, not allocated.
  constexpr long long kMaxRows = 1 << 20;
  if (used != arg.size() || v < 8 || v > kMaxRows)
    throw std::invalid_argument("data set '" + spec + "': expected a row count of 8 to " +
                                std::to_string(kMaxRows) + " after ':', got '" + arg + "'");
  return v;
}

void finish_image_bundle(DataBundle& b, ImageSplit split, const DataOptions& opt) {
  b.task = Task::multiclass;
  b.outputs = split.classes;
  b.loss = LossKind::softmax_ce;
  b.sample_shape = Shape(split.train.x.shape().begin() + 1, split.train.x.shape().end());
  b.train = std::move(split.train);
  b.test = std::move(split.test);
  if (opt.study_split) {
    // The dl-variance split: validation = first 7,500 of the official test set, test = the
    // last 2,500; smaller (generated) sets keep the same 3:1 proportion.
    const std::int64_t n = b.test.size();
    const std::int64_t head = n >= 10000 ? 7500 : (n * 3) / 4;
    auto [val, test] = split_head(b.test, head);
    b.validation = std::move(val);
    b.test = std::move(test);
    b.has_validation = true;
  }
}

void preprocess(DataBundle& b, const DataOptions& opt) {
  if (opt.preprocess == "none") return;
  if (opt.preprocess == "pixel-mean") {
    const Tensor mean = pixel_mean(b.train.x);
    subtract_rows(b.train.x, mean);
    subtract_rows(b.test.x, mean);
    if (b.has_validation) subtract_rows(b.validation.x, mean);
    return;
  }
  if (opt.preprocess == "channel-std") {
    if (b.train.x.ndim() != 4 || b.train.x.dim(1) != 3)
      throw std::invalid_argument("preprocess channel-std: needs (N, 3, H, W) images, data set '" +
                                  b.name + "' has " + shape_str(b.train.x.shape()));
    // The WRN study's CIFAR statistics, on the 0..1 scale.
    const std::vector<float> mean{125.3f / 255.0f, 123.0f / 255.0f, 113.9f / 255.0f};
    const std::vector<float> stddev{63.0f / 255.0f, 62.1f / 255.0f, 66.7f / 255.0f};
    standardize_channels(b.train.x, mean, stddev);
    standardize_channels(b.test.x, mean, stddev);
    if (b.has_validation) standardize_channels(b.validation.x, mean, stddev);
    return;
  }
  throw std::invalid_argument("preprocess: expected none, pixel-mean or channel-std, got '" +
                              opt.preprocess + "'");
}

// Whether load_uncached splits `spec` by DataOptions::split_seed and test_fraction (its
// branches, in its order).
bool takes_shuffled_split(const std::string& spec) {
  const std::string head = split_spec(spec).first;
  if (spec == "pmlb:mnist") return true;
  if (spec == "blobs" || spec == "bars" || head == "synthetic-mnist" ||
      head == "synthetic-cifar10" || head == "synthetic-cifar100" || spec == "mnist" ||
      spec == "fashion-mnist" || head == "cifar10" || head == "cifar100")
    return false;
  return !fs::is_directory(spec);
}

std::shared_ptr<DataBundle> load_uncached(const std::string& spec, const DataOptions& opt) {
  auto b = std::make_shared<DataBundle>();
  b->name = spec;
  const std::string root = opt.root.empty() ? data_root() : opt.root;
  // Not a structured binding: the lambdas below use `arg`, and clang before 16 cannot
  // capture a structured binding (the fuzz build, scripts/fuzz.sh, uses clang 14).
  const std::pair<std::string, std::string> head_arg = split_spec(spec);
  const std::string& head = head_arg.first;
  const std::string& arg = head_arg.second;

  auto generated_images = [&](std::int64_t channels, std::int64_t size, std::int64_t classes,
                              std::int64_t n_default) {
    const std::int64_t n = parse_count(spec, arg, n_default);
    const std::int64_t n_test = std::max<std::int64_t>(4, n / 4);
    const Dataset all = nets::make_bar_images(n + n_test, channels, size, classes, /*seed=*/7);
    b->source = "generated";
    finish_image_bundle(
        *b, ImageSplit{slice_rows(all, 0, n), slice_rows(all, n, n + n_test), classes}, opt);
  };

  if (spec == "blobs") {
    const Dataset all = nets::make_blobs(2500, 16, 4, 1.5f, /*seed=*/7);
    b->source = "generated";
    b->task = Task::multiclass;
    b->outputs = 4;
    b->sample_shape = {16};
    b->train = slice_rows(all, 0, 2000);
    b->test = slice_rows(all, 2000, 2500);
  } else if (spec == "bars") {
    generated_images(1, 12, 6, 2000);
  } else if (head == "synthetic-mnist") {
    generated_images(1, 28, 10, 1024);
  } else if (head == "synthetic-cifar10") {
    generated_images(3, 32, 10, 512);
  } else if (head == "synthetic-cifar100") {
    generated_images(3, 32, 100, 512);
  } else if (spec == "mnist" || spec == "fashion-mnist") {
    std::string dir = root + "/" + spec;
    if (spec == "fashion-mnist" && !fs::is_directory(dir))
      dir = "/usr/share/datasets/fashion-mnist";
    if (!fs::is_directory(dir))
      throw std::runtime_error(
          "data set '" + spec + "': no directory " + dir +
          (spec == "fashion-mnist" ? " (apt-get install dataset-fashion-mnist)" : "") +
          " (set --data-dir or DETDL_DATA_DIR)");
    b->source = dir;
    finish_image_bundle(*b, load_mnist_dir(dir), opt);
  } else if (spec == "pmlb:mnist") {
    // BUTTER's mnist is PMLB's: the official training and test images pooled (70,000 rows,
    // training first), 784 pixel columns / 255 (no per-column preparation), then the same
    // shuffled 80/20 split as every tabular set.
    const std::string dir = root + "/mnist";
    if (!fs::is_directory(dir))
      throw std::runtime_error("data set '" + spec + "': no directory " + dir +
                               " (set --data-dir or DETDL_DATA_DIR)");
    const ImageSplit m = load_mnist_dir(dir);
    const std::int64_t n_train = m.train.size(), n = n_train + m.test.size();
    const std::int64_t row = m.train.x.numel() / n_train;
    Dataset all{Tensor::empty({n, row}), Tensor::empty({n}, DType::i32)};
    std::copy_n(m.train.x.f32(), n_train * row, all.x.f32());
    std::copy_n(m.test.x.f32(), m.test.size() * row, all.x.f32() + n_train * row);
    std::copy_n(m.train.y.i32(), n_train, all.y.i32());
    std::copy_n(m.test.y.i32(), m.test.size(), all.y.i32() + n_train);
    b->source = dir + " (pooled, as PMLB's mnist)";
    b->task = Task::multiclass;
    b->outputs = m.classes;
    b->loss = LossKind::softmax_ce;
    b->sample_shape = {row};
    std::tie(b->train, b->test) = shuffled_split(all, opt.test_fraction, opt.split_seed);
  } else if (head == "cifar10" || head == "cifar100") {
    const std::string dir =
        !arg.empty() ? arg
                     : root + (head == "cifar10" ? "/cifar-10-batches-bin" : "/cifar-100-binary");
    b->source = dir;
    finish_image_bundle(
        *b, load_cifar_dir(dir, head == "cifar10" ? CifarKind::cifar10 : CifarKind::cifar100_fine),
        opt);
  } else if (fs::is_directory(spec)) {
    b->source = spec;
    finish_image_bundle(*b, load_mnist_dir(spec), opt);
  } else {
    // Tabular: a PMLB file or a PMLB name.
    std::string path, name;
    if (ends_with(spec, ".tsv") || ends_with(spec, ".tsv.gz")) {
      path = spec;
      name = fs::path(spec).filename().string();
      name = name.substr(0, name.find('.'));
    } else {
      name = head == "pmlb" ? arg : spec;
      path = pmlb_path(root + "/pmlb", name);
      if (!fs::exists(path)) {
        std::string known;
        for (const auto& k : known_data_names()) known += (known.empty() ? "" : ", ") + k;
        throw std::invalid_argument("data set '" + spec + "': not a known name and no file " +
                                    path + " (known: " + known + ")");
      }
    }
    TabularData t = load_pmlb(path, butter_task_override(name));
    b->source = path;
    b->task = t.task;
    b->outputs = t.n_outputs;
    b->loss = t.task == Task::multiclass ? LossKind::softmax_ce
              : t.task == Task::binary   ? LossKind::bce
                                         : LossKind::mse;
    b->sample_shape = {t.n_inputs};
    std::tie(b->train, b->test) = shuffled_split(t.all, opt.test_fraction, opt.split_seed);
  }
  if (b->task != Task::multiclass || b->train.x.ndim() != 4) {
    if (opt.preprocess != "none")
      throw std::invalid_argument("preprocess " + opt.preprocess +
                                  ": only for image data sets, not '" + spec + "'");
  } else {
    preprocess(*b, opt);
  }
  return b;
}

}  // namespace

std::shared_ptr<const DataBundle> load_data(const std::string& spec, const DataOptions& given) {
  using Ptr = std::shared_ptr<const DataBundle>;
  static std::mutex mu;
  static std::map<std::string, std::shared_future<Ptr>> cache;
  // Only the tabular sets (and BUTTER's pooled mnist) are split by seed: for the others the
  // split options are left out of the key, so that runs differing in their split seeds share
  // one copy (a study of 384 LeNet seeds held 384 copies of MNIST, 84 GB, before).
  DataOptions opt = given;
  if (!takes_shuffled_split(spec)) {
    opt.split_seed = DataOptions{}.split_seed;
    opt.test_fraction = DataOptions{}.test_fraction;
  }
  const std::string key = opt.key(spec);
  std::promise<Ptr> promise;
  std::shared_future<Ptr> existing;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(key); it != cache.end()) {
      existing = it->second;
    } else {
      cache.emplace(key, promise.get_future().share());
    }
  }
  if (existing.valid()) return existing.get();  // loaded or being loaded by another caller
  // The first caller loads, outside the lock; callers for the same key wait for it, so a
  // data set is in memory once however many runs start together.
  try {
    Ptr b = load_uncached(spec, opt);
    promise.set_value(b);
    return b;
  } catch (...) {
    promise.set_exception(std::current_exception());
    std::lock_guard<std::mutex> lock(mu);
    cache.erase(key);  // a later call may try again (e.g. after the file is fixed)
    throw;
  }
}

}  // namespace detdl::data
