// Experiments (nets/experiment.h): the JSON form and its errors, presets, the data
// registry's sharing, and whole runs: records with every series, determinism across
// threads, label noise and augmentation keyed by their own seeds, a BUTTER run.
#include <gtest/gtest.h>

#include <limits>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "nets/data/cifar.h"
#include "nets/data/registry.h"
#include "nets/synthetic.h"
#include "nets/experiment.h"

namespace detdl::nets {
namespace {

const std::string kShared = DETDL_SHARED_DIR;

Experiment tiny_mlp() {
  Experiment e;
  e.net = "mlp:16";
  e.data = "blobs";
  e.epochs = 2;
  e.batch_size = 64;
  e.optimizer.momentum = 0.9f;
  e.schedule.base_lr = 0.05f;
  return e;
}

TEST(ExperimentJson, RoundTripsEveryField) {
  Experiment e = preset("resnet56");
  e.seeds = {11, 12, 13, 14, 15, 16};
  e.level = Level::repeatable;
  e.fast_ops = {OpFamily::conv_wgrad, OpFamily::loss_reduce};
  e.label_noise = 0.25;
  e.threads = 3;
  const auto j = to_json(e);
  const Experiment back = experiment_from_json(j);
  EXPECT_EQ(to_json(back), j);
  EXPECT_EQ(back.seeds.split, 16u);
  EXPECT_EQ(back.schedule.kind, Schedule::Kind::piecewise);
  EXPECT_EQ(back.fast_ops.size(), 2u);
}

// The emulated level's fields: seeds.impl and emulated_ops appear in the JSON form (and so in
// the run key and record) only where emulation is on, so every other run keeps the form it
// had before the level existed; a CUDA run cannot emulate (the emulated kernels are the CPU's).
TEST(ExperimentJson, EmulationFieldsOnlyWhereEmulationIsOn) {
  Experiment e = tiny_mlp();
  e.seeds.impl = 42;
  EXPECT_FALSE(to_json(e)["seeds"].contains("impl"));
  EXPECT_FALSE(to_json(e).contains("emulated_ops"));
  e.emulated_ops = {ImplFamily::conv, ImplFamily::math};
  auto j = to_json(e);
  EXPECT_EQ(j["seeds"]["impl"], 42);
  EXPECT_EQ(j["emulated_ops"], nlohmann::json::array({"conv", "math"}));
  Experiment back = experiment_from_json(j);
  EXPECT_EQ(back.seeds.impl, 42u);
  EXPECT_EQ(back.emulated_ops, e.emulated_ops);
  EXPECT_EQ(to_json(back), j);
  // The run context: only the named families, portable kernels everywhere else.
  RunContext c = back.context();
  EXPECT_TRUE(c.emulated(ImplFamily::conv));
  EXPECT_FALSE(c.emulated(ImplFamily::matmul));
  EXPECT_EQ(c.impl_seed, 42u);
  EXPECT_EQ(c.level(OpFamily::matmul), Level::portable);
  // Level emulated: every family.
  e.emulated_ops.clear();
  e.level = Level::emulated;
  back = experiment_from_json(to_json(e));
  EXPECT_EQ(back.level, Level::emulated);
  c = back.context();
  for (int i = 0; i < kImplFamilyCount; ++i) EXPECT_TRUE(c.emulate[i]) << i;
  EXPECT_EQ(c.level(OpFamily::conv_wgrad), Level::portable);
  // Refusals name the field.
  auto message = [](nlohmann::json j) {
    try {
      experiment_from_json(j, "x");
    } catch (const std::invalid_argument& ex) {
      return std::string(ex.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"emulated_ops", {"winograd"}}}).find("x.emulated_ops: unknown"),
            std::string::npos);
  // The CUDA backend emulates every family, on its own kernels: cuDNN / cuBLAS is refused.
  EXPECT_EQ(message({{"level", "emulated"}, {"device", "cuda"}}), "no error");
  EXPECT_NE(message({{"emulated_ops", {"math"}}, {"device", "cuda"}, {"implementation", "vendor"}})
                .find("x.implementation: emulation runs on detdl's own CUDA kernels"),
            std::string::npos);
  EXPECT_NE(message({{"seeds", {{"impl", -3}}}}).find("x.seeds.impl"), std::string::npos);
  // An experiment built in code is refused too, before any device or data is touched.
  Experiment coded;
  coded.device = Device::cuda;
  coded.emulated_ops = {ImplFamily::math, ImplFamily::scatter};
  coded.implementation = Implementation::vendor;
  try {
    run_experiment(coded);
    ADD_FAILURE() << "a vendor CUDA run with emulation was not refused";
  } catch (const std::invalid_argument& ex) {
    EXPECT_NE(std::string(ex.what()).find(
                  "experiment implementation: emulation runs on detdl's own CUDA kernels"),
              std::string::npos)
        << ex.what();
  }
}

// Seeds are 64-bit unsigned: those of 2^63 and more (half of all the studies' derived seeds)
// come back from a record's JSON as themselves (they were refused as negative, so a stored
// run could not be re-run from its record with `train --config`), and an integer field
// refuses a value it cannot hold instead of wrapping.
TEST(ExperimentJson, SeedsOfSixtyFourBitsRoundTrip) {
  Experiment e;
  e.seeds.init = 9853754936388950388ull;
  e.seeds.order = std::numeric_limits<std::uint64_t>::max();
  e.seeds.split = (std::uint64_t{1} << 63);
  const auto j = to_json(e);
  const Experiment back = experiment_from_json(j);
  EXPECT_EQ(back.seeds.init, e.seeds.init);
  EXPECT_EQ(back.seeds.order, e.seeds.order);
  EXPECT_EQ(back.seeds.split, e.seeds.split);
  EXPECT_EQ(to_json(back), j);
  nlohmann::json big = {{"epochs", std::numeric_limits<std::uint64_t>::max()}};
  EXPECT_THROW(experiment_from_json(big, "x"), std::invalid_argument);  // int64 field
}

TEST(ExperimentJson, ErrorsNameTheField) {
  auto message = [](const nlohmann::json& j) {
    try {
      experiment_from_json(j, "study.toml");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"epoch", 3}}).find("study.toml.epoch: unknown field"), std::string::npos);
  EXPECT_NE(message({{"epochs", "ten"}}).find("study.toml.epochs"), std::string::npos);
  EXPECT_NE(message({{"batch_size", 0}}).find("study.toml.batch_size"), std::string::npos);
  EXPECT_NE(message({{"level", "fastest"}}).find("study.toml.level"), std::string::npos);
  EXPECT_NE(message({{"fast_ops", {"gemm"}}}).find("study.toml.fast_ops"), std::string::npos);
  EXPECT_NE(message({{"optimizer", {{"kind", "adagrad"}}}}).find("study.toml.optimizer.kind"),
            std::string::npos);
  EXPECT_NE(message({{"optimizer", {{"lr", 0.1}}}}).find("study.toml.optimizer.lr: unknown field"),
            std::string::npos);
  EXPECT_NE(message({{"seeds", {{"init", -1}}}}).find("study.toml.seeds.init"), std::string::npos);
  EXPECT_NE(message({{"schedule", {{"kind", "piecewise"}, {"milestones", {1, 2}}}}})
                .find("study.toml.schedule.factors"),
            std::string::npos);
  EXPECT_NE(message(nlohmann::json::array()).find("study.toml: expected an object"),
            std::string::npos);
}

TEST(Presets, AllParseAndUnknownIsRefused) {
  for (const auto& name : preset_names()) {
    const Experiment e = preset(name);
    EXPECT_EQ(to_json(experiment_from_json(to_json(e))), to_json(e)) << name;
  }
  EXPECT_EQ(preset("lenet5").schedule.base_lr, 0.01f);
  // The study's 'epoch > 60' on Keras's 0-based epochs: the rate drops from 0-based epoch 61.
  EXPECT_EQ(preset("wrn-28-10").schedule.milestones, (std::vector<std::int64_t>{61, 121, 161}));
  EXPECT_EQ(preset("wrn-28-10").schedule.lr(60), 0.1f);
  EXPECT_NEAR(preset("wrn-28-10").schedule.lr(61), 0.02, 1e-8);
  EXPECT_THROW(preset("lenet6"), std::invalid_argument);
  // Every dl-variance model was a Keras model compiled with categorical_crossentropy on a
  // softmax output: the presets train with its clipped form.
  for (const char* name :
       {"lenet1", "lenet4", "lenet5", "resnet20", "resnet38", "resnet56", "wrn-28-10"})
    EXPECT_EQ(preset(name).loss, "keras_ce") << name;
}

// keras_ce trains (a real loss, not the exact one renamed): it learns blobs, reports a loss
// of at most -log(1e-7) per sample, and its weights differ from softmax_ce's only through
// the loss (same seeds, same batches).
TEST(RunExperiment, KerasLossTrainsAndDiffersFromTheExactOne) {
  Experiment e = tiny_mlp();
  e.loss = "keras_ce";
  const RunOutput keras = run_experiment(e);
  const auto& ep = keras.record["epochs"][1];
  EXPECT_GT(ep["test"]["accuracy"].get<double>(), 0.5);
  EXPECT_LE(ep["test"]["loss"].get<double>(), 16.2);
  EXPECT_NE(keras.result.weight_hash, run_experiment(tiny_mlp()).result.weight_hash);
  EXPECT_EQ(keras.record["experiment"]["loss"], "keras_ce");
  e.loss = "keras";
  EXPECT_THROW(run_experiment(e), std::invalid_argument);
}

// validation_rows: the study's generator saw 7,424 of 7,500 validation images. Only the
// validation metrics change (over the first rows), never the weights; it is in the JSON form
// (so in run keys) only when set; bad counts are refused by name.
TEST(RunExperiment, ValidationRowsCutOnlyTheValidationMetrics) {
  Experiment e;
  e.net = "lenet1";
  e.data = "synthetic-mnist:200";
  e.study_split = true;
  e.epochs = 2;
  e.batch_size = 32;
  EXPECT_FALSE(to_json(e).contains("validation_rows"));
  const RunOutput all = run_experiment(e);
  const std::int64_t n = all.record["data"]["validation_rows"];
  ASSERT_GT(n, 10);
  e.validation_rows = n - 7;
  EXPECT_EQ(to_json(e)["validation_rows"], n - 7);
  EXPECT_EQ(experiment_from_json(to_json(e)).validation_rows, n - 7);
  const RunOutput cut = run_experiment(e);
  EXPECT_EQ(cut.result.weight_hash, all.result.weight_hash);
  EXPECT_EQ(cut.record["data"]["validation_rows"], n - 7);
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(cut.record["epochs"][k]["test"], all.record["epochs"][k]["test"]);
    EXPECT_EQ(cut.record["epochs"][k]["weight_hash"], all.record["epochs"][k]["weight_hash"]);
  }
  // Seven rows fewer: the validation loss is a mean over other rows (equal only by chance).
  EXPECT_NE(cut.record["epochs"][1]["validation"]["loss"],
            all.record["epochs"][1]["validation"]["loss"]);
  e.validation_rows = n;  // every row: the same record
  EXPECT_EQ(run_experiment(e).record["epochs"][1]["validation"],
            all.record["epochs"][1]["validation"]);
  e.validation_rows = n + 1;
  try {
    run_experiment(e);
    ADD_FAILURE() << "too many rows accepted";
  } catch (const std::invalid_argument& x) {
    EXPECT_NE(std::string(x.what()).find("validation_rows"), std::string::npos) << x.what();
  }
  e.validation_rows = 5;
  e.study_split = false;
  EXPECT_THROW(run_experiment(e), std::invalid_argument);
  EXPECT_THROW(experiment_from_json(nlohmann::json{{"validation_rows", -1}}),
               std::invalid_argument);
}

TEST(DataRegistry, LoadsOnceAndShares) {
  const auto a = data::load_data("blobs");
  const auto b = data::load_data("blobs");
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(a->train.x.impl().storage.get(), b->train.x.impl().storage.get());
  data::DataOptions other;
  other.split_seed = 2;  // blobs is not split by seed: the same bundle
  other.test_fraction = 0.3;
  EXPECT_EQ(data::load_data("blobs", other).get(), a.get());
  EXPECT_EQ(data::load_data("synthetic-mnist:64", other).get(),
            data::load_data("synthetic-mnist:64").get());
  other.root = DETDL_SHARED_DIR "/data";
  data::DataOptions same_root;
  same_root.root = other.root;
  EXPECT_EQ(data::load_data("mnist", other).get(), data::load_data("mnist", same_root).get());
  // A tabular set is split by seed: another seed, another bundle (and another split).
  const auto w1 = data::load_data("wine_quality_white", same_root);
  const auto w2 = data::load_data("wine_quality_white", other);
  EXPECT_NE(w1.get(), w2.get());
  EXPECT_NE(w1->test.size(), w2->test.size());  // 20% and 30% of the rows
  other.preprocess = "pixel-mean";  // options that change the bundle still make a new one
  EXPECT_NE(data::load_data("synthetic-mnist:64", other).get(),
            data::load_data("synthetic-mnist:64").get());
  try {
    data::load_data("no-such-data-set");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-data-set"), std::string::npos);
  }
  EXPECT_THROW(data::load_data("synthetic-cifar10:abc"), std::invalid_argument);
}

TEST(DataRegistry, MnistStudySplit) {
  data::DataOptions o;
  o.root = kShared + "/data";
  o.study_split = true;
  const auto m = data::load_data("mnist", o);
  EXPECT_EQ(m->train.size(), 60000);
  EXPECT_EQ(m->validation.size(), 7500);
  EXPECT_EQ(m->test.size(), 2500);
  EXPECT_EQ(m->sample_shape, (Shape{1, 28, 28}));
  EXPECT_EQ(m->outputs, 10);
}

// BUTTER's mnist is PMLB's: official train and test pooled (70,000 rows), 784 pixel columns
// / 255, the shuffled 80/20 split of every tabular set (test = ceil(0.2 n)).
TEST(DataRegistry, PmlbMnistIsThePooledFlatSet) {
  data::DataOptions o;
  o.root = kShared + "/data";
  const auto m = data::load_data("pmlb:mnist", o);
  EXPECT_EQ(m->train.size() + m->test.size(), 70000);
  EXPECT_EQ(m->test.size(), 14000);
  EXPECT_EQ(m->sample_shape, (Shape{784}));
  EXPECT_EQ(m->train.x.shape(), (Shape{56000, 784}));
  EXPECT_EQ(m->outputs, 10);
  EXPECT_FALSE(m->has_validation);
  // The same rows as the image set's, flattened: every training image of mnist is in the
  // pool once (checked by the multiset of per-row pixel sums, exact in float64).
  const auto img = data::load_data("mnist", o);
  auto sums = [](const Dataset& d) {
    std::vector<double> v;
    const std::int64_t row = d.x.numel() / d.size();
    for (std::int64_t i = 0; i < d.size(); ++i) {
      double s = 0;
      for (std::int64_t j = 0; j < row; ++j) s += d.x.f32()[i * row + j] * 255.0;
      v.push_back(std::round(s) + 1e6 * d.y.i32()[i]);
    }
    return v;
  };
  auto pooled = sums(m->train), official = sums(img->train);
  const auto t1 = sums(m->test), t2 = sums(img->test);
  pooled.insert(pooled.end(), t1.begin(), t1.end());
  official.insert(official.end(), t2.begin(), t2.end());
  std::sort(pooled.begin(), pooled.end());
  std::sort(official.begin(), official.end());
  EXPECT_EQ(pooled, official);
  for (std::int64_t j = 0; j < 784; ++j) {
    const float v = m->train.x.f32()[j];
    EXPECT_EQ(v, std::round(v * 255.0f) / 255.0f);
  }
  // Another split seed: other rows in the test split.
  data::DataOptions o2 = o;
  o2.split_seed = 2;
  const auto other = data::load_data("pmlb:mnist", o2);
  EXPECT_FALSE(std::equal(m->test.y.i32(), m->test.y.i32() + 14000, other->test.y.i32()));
}

// A BUTTER net on images (flattened), past the README's 20%: built, and the record says how
// far it is (the published mnist / rectangle / 3 / 1024 at 807 parameters).
TEST(RunExperiment, ButterOnMnistRecordsItsDistanceFromTheSize) {
  Experiment e = preset("butter");
  e.data = "synthetic-mnist:64";
  e.net = "butter:rectangle:3:1024";
  e.epochs = 1;
  const RunOutput out = run_experiment(e);
  const auto& b = out.record["net"]["butter"];
  EXPECT_EQ(out.parameters, 807);
  EXPECT_EQ(b["params"], 807);
  EXPECT_EQ(b["size"], 1024);
  EXPECT_EQ(b["conformant"], false);
  EXPECT_NEAR(b["relative_distance"].get<double>(), -217.0 / 1024, 1e-15);
  EXPECT_NE(out.record["net"]["description"].get<std::string>().find("-21.2% from the size"),
            std::string::npos)
      << out.record["net"]["description"];
}

TEST(RunExperiment, RecordsTwentySeriesAndIsThreadIndependent) {
  Experiment e = tiny_mlp();
  const RunOutput one = run_experiment(e);
  e.threads = 2;
  const RunOutput two = run_experiment(e);
  EXPECT_EQ(one.result.weight_hash, two.result.weight_hash);
  const auto& rec = one.record;
  EXPECT_EQ(rec["weight_hash"], one.result.weight_hash);
  ASSERT_EQ(rec["epochs"].size(), 2u);
  const auto& ep = rec["epochs"][1];
  // 10 series for the training split and 10 for the test split.
  for (const char* split : {"train", "test"}) {
    EXPECT_EQ(ep[split].size(), 10u) << split;
    for (const char* key :
         {"loss", "accuracy", "cosine_similarity", "hinge", "kullback_leibler_divergence",
          "mean_absolute_error", "mean_squared_error", "mean_squared_logarithmic_error",
          "root_mean_squared_error", "squared_hinge"}) {
      ASSERT_TRUE(ep[split].contains(key)) << split << " " << key;
      EXPECT_TRUE(std::isfinite(ep[split][key].get<double>())) << split << " " << key;
    }
  }
  EXPECT_EQ(ep["test_per_class_accuracy"].size(), 4u);
  EXPECT_EQ(rec["test_predictions"].size(), 500u);
  EXPECT_GT(ep["test"]["accuracy"].get<double>(), 0.5);
  EXPECT_EQ(rec["experiment"], to_json(tiny_mlp()));
}

TEST(RunExperiment, WithoutMetricsTheRecordKeepsLossAndAccuracy) {
  Experiment e = tiny_mlp();
  e.metrics = false;
  const RunOutput out = run_experiment(e);
  const auto& ep = out.record["epochs"][1];
  EXPECT_EQ(ep["test"].size(), 2u);
  EXPECT_EQ(ep["test"]["accuracy"].get<double>(),
            static_cast<double>(out.result.epochs[1].test_accuracy));
  EXPECT_GT(ep["test"]["accuracy"].get<double>(), 0.5);
  EXPECT_EQ(ep["train"]["accuracy"].get<double>(),
            static_cast<double>(out.result.epochs[1].train_accuracy));
  // Metrics never change the weights.
  EXPECT_EQ(out.result.weight_hash, run_experiment(tiny_mlp()).result.weight_hash);
}

TEST(RunExperiment, EachSeedMovesOnlyItsSource) {
  const std::string base = run_experiment(tiny_mlp()).result.weight_hash;
  Experiment e = tiny_mlp();
  e.seeds.init = 2;
  EXPECT_NE(run_experiment(e).result.weight_hash, base);
  e = tiny_mlp();
  e.seeds.order = 2;
  EXPECT_NE(run_experiment(e).result.weight_hash, base);
  // No augmentation, no dropout, no label noise in this run: their seeds change nothing.
  e = tiny_mlp();
  e.seeds.augment = 9;
  e.seeds.dropout = 9;
  e.seeds.label_noise = 9;
  EXPECT_EQ(run_experiment(e).result.weight_hash, base);
  // With label noise, its seed matters; the shared data set is left untouched.
  e = tiny_mlp();
  e.label_noise = 0.2;
  const std::string noisy = run_experiment(e).result.weight_hash;
  EXPECT_NE(noisy, base);
  e.seeds.label_noise = 2;
  EXPECT_NE(run_experiment(e).result.weight_hash, noisy);
  EXPECT_EQ(run_experiment(tiny_mlp()).result.weight_hash, base);
}

TEST(RunExperiment, AugmentedCnnOnCifarShapedData) {
  Experiment e;
  e.net = "cnn";
  e.data = "synthetic-cifar10:64";
  e.epochs = 1;
  e.batch_size = 16;
  e.augment = "crop-flip";
  const std::string a = run_experiment(e).result.weight_hash;
  e.threads = 2;
  EXPECT_EQ(run_experiment(e).result.weight_hash, a);
  e.seeds.augment = 5;
  EXPECT_NE(run_experiment(e).result.weight_hash, a);
  e.augment = "shift-reflect-flip:0.125";
  EXPECT_NE(run_experiment(e).result.weight_hash, a);
  e.augment = "rotate";
  EXPECT_THROW(run_experiment(e), std::invalid_argument);
}

// Generated images written in CIFAR's binary format, read back by the loader: the path a
// user's real CIFAR download takes. 40 training rows in 5 batch files, 12 test rows.
std::string write_cifar_dir(const std::string& name, data::CifarKind kind, std::int64_t classes) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("detdl_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const Dataset all = nets::make_bar_images(52, 3, 32, classes, 11);
  auto clamp01 = [](Dataset d) {  // the format stores bytes: keep the images in [0, 1]
    float* x = d.x.f32();
    for (std::int64_t i = 0; i < d.x.numel(); ++i) x[i] = std::min(1.0f, std::max(0.0f, x[i]));
    return d;
  };
  if (kind == data::CifarKind::cifar10) {
    for (int b = 0; b < 5; ++b)
      data::write_cifar_file((dir / ("data_batch_" + std::to_string(b + 1) + ".bin")).string(),
                             clamp01(slice_rows(all, b * 8, b * 8 + 8)), kind);
    data::write_cifar_file((dir / "test_batch.bin").string(), clamp01(slice_rows(all, 40, 52)),
                           kind);
  } else {
    data::write_cifar_file((dir / "train.bin").string(), clamp01(slice_rows(all, 0, 40)), kind);
    data::write_cifar_file((dir / "test.bin").string(), clamp01(slice_rows(all, 40, 52)), kind);
  }
  return dir.string();
}

TEST(RunExperiment, ResNet20AndWrn16x4TrainOnCifarFormatFiles) {
  const std::string c10 = write_cifar_dir("cifar10", data::CifarKind::cifar10, 10);
  const std::string c100 = write_cifar_dir("cifar100", data::CifarKind::cifar100_fine, 100);
  Experiment r = preset("resnet20");
  r.data = "cifar10:" + c10;
  r.epochs = 1;
  r.batch_size = 16;  // 3 steps
  const RunOutput a = run_experiment(r);
  EXPECT_EQ(a.result.steps, 3);
  EXPECT_EQ(a.record["data"]["train_rows"], 40);
  EXPECT_EQ(a.record["data"]["test_rows"], 3);  // study split: last quarter of 12
  EXPECT_EQ(a.record["data"]["validation_rows"], 9);
  EXPECT_TRUE(std::isfinite(a.record["epochs"][0]["train"]["loss"].get<double>()));
  r.threads = 2;
  EXPECT_EQ(run_experiment(r).result.weight_hash, a.result.weight_hash);

  Experiment w = preset("wrn-28-10");
  w.net = "wrn-16-4";
  w.data = "cifar100:" + c100;
  w.epochs = 1;
  w.batch_size = 20;  // 2 steps
  const RunOutput b = run_experiment(w);
  EXPECT_EQ(b.result.steps, 2);
  EXPECT_EQ(b.parameters, 2772020);
  w.threads = 2;
  EXPECT_EQ(run_experiment(w).result.weight_hash, b.result.weight_hash);
  std::filesystem::remove_all(c10);
  std::filesystem::remove_all(c100);
}

TEST(RunExperiment, ButterWineQualityLossFalls) {
  // The BUTTER run: wine_quality_white, rectangle, depth 3, size 1024, Adam 1e-4,
  // batch 256 (CI-sized: 12 epochs of the 3000).
  Experiment e = preset("butter");
  e.data_dir = kShared + "/data";
  e.epochs = 12;
  const RunOutput out = run_experiment(e);
  EXPECT_EQ(out.parameters, 996);
  const auto& eps = out.record["epochs"];
  ASSERT_EQ(eps.size(), 12u);
  for (const auto& ep : eps) {
    EXPECT_EQ(ep["train"].size(), 10u);
    EXPECT_EQ(ep["test"].size(), 10u);
  }
  const double first = eps[0]["test"]["loss"].get<double>(),
               last = eps[11]["test"]["loss"].get<double>();
  EXPECT_LT(last, first);
  int falls = 0;
  for (std::size_t i = 1; i < eps.size(); ++i)
    falls += eps[i]["test"]["loss"].get<double>() < eps[i - 1]["test"]["loss"].get<double>();
  EXPECT_GE(falls, 9);
  EXPECT_EQ(out.record["data"]["test_rows"], 980);  // ceil(0.2 * 4898)
}

TEST(RunExperiment, BadNamesAreRefusedByName) {
  Experiment e = tiny_mlp();
  e.net = "resnet21";
  e.data = "synthetic-cifar10:16";
  try {
    run_experiment(e);
    FAIL();
  } catch (const std::invalid_argument& ex) {
    EXPECT_NE(std::string(ex.what()).find("21"), std::string::npos);
  }
  e.net = "lenet5";  // LeNet needs 1x28x28 images
  EXPECT_THROW(run_experiment(e), std::invalid_argument);
  e.net = "transformer";
  EXPECT_THROW(run_experiment(e), std::invalid_argument);
}

}  // namespace
}  // namespace detdl::nets
