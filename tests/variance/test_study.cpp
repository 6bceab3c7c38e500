// Study files and plans: parsing (TOML and JSON), errors that name the file and field,
// seeds derived per repetition only for the sources a setting varies, stable keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "tests/cli_run.h"
#include "nets/butter.h"
#include "variance/study.h"
#include "variance/sweep.h"

namespace detdl::variance {
namespace {
namespace fs = std::filesystem;

fs::path write_file(const std::string& name, const std::string& text) {
  const fs::path dir = fs::temp_directory_path() / ("detdl_study_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / name) << text;
  return dir / name;
}

const char* kStudy = R"(
name = "s"
repetitions = 4
[experiment]
net = "mlp:8"
epochs = 2
[[setting]]
name = "fixed"
[[setting]]
name = "fast"
level = "fast"
threads = 2
fast_ops = ["conv_wgrad"]
[[setting]]
name = "varied"
vary = ["all"]
[[setting]]
name = "order-only"
vary = ["order"]
[setting.experiment]
batch_size = 16
)";

std::string error_of(const std::string& name, const std::string& text) {
  try {
    load_study(write_file(name, text).string());
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

TEST(StudyFile, ParsesSettingsAndOverrides) {
  const Study s = load_study(write_file("s.toml", kStudy).string());
  EXPECT_EQ(s.name, "s");
  EXPECT_EQ(s.repetitions, 4);
  ASSERT_EQ(s.settings.size(), 4u);
  EXPECT_EQ(s.settings[0].experiment.net, "mlp:8");
  EXPECT_EQ(s.settings[1].experiment.level, Level::fast);
  EXPECT_EQ(s.settings[1].experiment.threads, 2);
  EXPECT_EQ(s.settings[1].experiment.fast_ops, std::vector<OpFamily>{OpFamily::conv_wgrad});
  EXPECT_EQ(s.settings[2].vary.size(), 6u);
  EXPECT_EQ(s.settings[3].experiment.batch_size, 16);
  EXPECT_EQ(s.settings[0].experiment.batch_size, 32);  // the base's default
  // The same study as JSON gives the same plan.
  const Study j = load_study(write_file("s.json", s.spec.dump()).string());
  const auto a = make_plan(s), b = make_plan(j);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].key, b[i].key);
}

// vary = ["impl"]: the implementation seed changes with the repetition, the six algorithmic
// seeds stay; "all" leaves impl fixed; varying impl where nothing is emulated is refused.
TEST(StudyFile, ImplSeedVariesOnlyWhereAsked) {
  const Study s = load_study(write_file("impl.toml", R"(
name = "impl"
repetitions = 3
[experiment]
net = "mlp:8"
epochs = 1
[[setting]]
name = "impl"
level = "emulated"
vary = ["impl"]
[[setting]]
name = "conv-only"
emulated_ops = ["conv"]
vary = ["impl"]
[[setting]]
name = "algorithmic"
level = "emulated"
vary = ["all"]
)")
                                 .string());
  ASSERT_EQ(s.settings.size(), 3u);
  EXPECT_EQ(s.settings[1].experiment.emulated_ops, std::vector<ImplFamily>{ImplFamily::conv});
  const auto plan = make_plan(s);
  ASSERT_EQ(plan.size(), 9u);
  std::set<std::uint64_t> impl0, init0, impl2;
  for (int r = 0; r < 3; ++r) {
    impl0.insert(plan[r].experiment.seeds.impl);
    init0.insert(plan[r].experiment.seeds.init);
    impl2.insert(plan[6 + r].experiment.seeds.impl);
  }
  EXPECT_EQ(impl0.size(), 3u);  // varied
  EXPECT_EQ(init0.size(), 1u);  // fixed
  EXPECT_EQ(impl2.size(), 1u);  // "all" is the six algorithmic seeds
  EXPECT_NE(error_of("bad-impl.toml", R"(
name = "b"
[experiment]
net = "mlp:8"
[[setting]]
name = "x"
vary = ["impl"]
)")
                .find("setting[1].vary: impl varies nothing"),
            std::string::npos);
}

TEST(StudyFile, SettingsCanCompareDevices) {
  // A device comparison: the same runs on the CPU and on CUDA (planning needs no GPU).
  const Study s = load_study(write_file("devices.toml", R"(
name = "devices"
repetitions = 2
[experiment]
net = "mlp:8"
[[setting]]
name = "cpu"
[[setting]]
name = "cuda"
device = "cuda"
)")
                                 .string());
  ASSERT_EQ(s.settings.size(), 2u);
  EXPECT_EQ(s.settings[0].experiment.device, Device::cpu);
  EXPECT_EQ(s.settings[1].experiment.device, Device::cuda);
  const auto plan = make_plan(s);
  ASSERT_EQ(plan.size(), 4u);
  std::set<std::string> keys;
  for (const auto& row : plan) keys.insert(row.key);
  EXPECT_EQ(keys.size(), 4u);  // the device is part of a run's identity
  EXPECT_NE(
      error_of("bad-device.toml", "name = \"d\"\n[[setting]]\nname = \"a\"\ndevice = \"tpu\"\n")
          .find("device"),
      std::string::npos);
}

TEST(StudyFile, SettingsCanCompareImplementations) {
  // Own kernels against the vendor libraries on CUDA (planning needs no GPU).
  const Study s = load_study(write_file("impl.toml", R"(
name = "impl"
repetitions = 1
[experiment]
net = "mlp:8"
device = "cuda"
[[setting]]
name = "own"
[[setting]]
name = "vendor"
implementation = "vendor"
)")
                                 .string());
  ASSERT_EQ(s.settings.size(), 2u);
  EXPECT_EQ(s.settings[0].experiment.implementation, Implementation::own);
  EXPECT_EQ(s.settings[1].experiment.implementation, Implementation::vendor);
  const auto plan = make_plan(s);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_NE(plan[0].key, plan[1].key);  // the implementation is part of a run's identity
  EXPECT_NE(error_of("bad-impl.toml",
                     "name = \"d\"\n[[setting]]\nname = \"a\"\nimplementation = \"mkl\"\n")
                .find("implementation"),
            std::string::npos);
}

TEST(StudyPlan, SeedsVaryOnlyWhereAsked) {
  const Study s = load_study(write_file("s.toml", kStudy).string());
  const auto plan = make_plan(s);
  ASSERT_EQ(plan.size(), 16u);
  std::set<std::string> keys;
  std::set<std::uint64_t> varied_init, order_only;
  for (const auto& row : plan) {
    keys.insert(row.key);
    const auto& sd = row.experiment.seeds;
    if (row.setting == "fixed" || row.setting == "fast") {
      EXPECT_EQ(sd.init, 1u);
      EXPECT_EQ(sd.order, 1u);
    }
    if (row.setting == "varied") {
      varied_init.insert(sd.init);
      EXPECT_NE(sd.init, sd.order);  // each source its own seed
    }
    if (row.setting == "order-only") {
      EXPECT_EQ(sd.init, 1u);
      EXPECT_EQ(sd.dropout, 1u);
      order_only.insert(sd.order);
    }
  }
  EXPECT_EQ(keys.size(), 16u);  // every row its own key, fixed repetitions included
  EXPECT_EQ(varied_init.size(), 4u);
  EXPECT_EQ(order_only.size(), 4u);
  // Stable: the same file gives the same keys; a changed experiment gives new ones.
  const auto again = make_plan(load_study(write_file("s.toml", kStudy).string()));
  EXPECT_EQ(again[5].key, plan[5].key);
  std::string changed = kStudy;
  changed.replace(changed.find("epochs = 2"), 10, "epochs = 3");
  EXPECT_NE(make_plan(load_study(write_file("c.toml", changed).string()))[5].key, plan[5].key);
  EXPECT_NE(derived_seed(1, SeedSource::init, 0), derived_seed(1, SeedSource::order, 0));
  EXPECT_NE(derived_seed(1, SeedSource::init, 0), derived_seed(1, SeedSource::init, 1));
}

// A setting's own repetitions: more rows for it, the others keep the study's count, and the
// shared repetitions keep their keys (a store that ran 16 resumes to 64).
TEST(StudyPlan, SettingsCanHaveTheirOwnRepetitions) {
  std::string text = kStudy;
  text.replace(text.find("name = \"varied\"\n"), 16, "name = \"varied\"\nrepetitions = 9\n");
  const Study s = load_study(write_file("r.toml", text).string());
  const auto plan = make_plan(s);
  ASSERT_EQ(plan.size(), 4u + 4u + 9u + 4u);
  std::map<std::string, int> per;
  for (const auto& row : plan) ++per[row.setting];
  EXPECT_EQ(per["varied"], 9);
  EXPECT_EQ(per["fixed"], 4);
  const auto base = make_plan(load_study(write_file("s.toml", kStudy).string()));
  std::set<std::string> base_keys;
  for (const auto& row : base) base_keys.insert(row.key);
  int shared = 0;
  for (const auto& row : plan) shared += base_keys.count(row.key);
  EXPECT_EQ(shared, 16);
  // table_group (which of the paper's maxima a setting counts toward) changes no key.
  std::string grouped = text;
  grouped.replace(grouped.find("repetitions = 9"), 15, "repetitions = 9\ntable_group = \"g\"");
  const Study sg = load_study(write_file("g.toml", grouped).string());
  for (const auto& st : sg.settings) EXPECT_EQ(st.table_group, st.name == "varied" ? "g" : "");
  EXPECT_EQ(make_plan(sg).front().key, plan.front().key);
  EXPECT_EQ(make_plan(sg).back().key, plan.back().key);
  grouped.replace(grouped.find("table_group = \"g\""), 17, "table_group = 3");
  EXPECT_NE(
      error_of("g2.toml", grouped).find("setting[3].table_group: expected a non-empty string"),
      std::string::npos)
      << error_of("g2.toml", grouped);
  text.replace(text.find("repetitions = 9"), 15, "repetitions = 0");
  EXPECT_NE(error_of("z.toml", text).find("setting[3].repetitions: expected an integer from 1"),
            std::string::npos)
      << error_of("z.toml", text);
}

TEST(StudyFile, ErrorsNameTheFileAndField) {
  auto has = [](const std::string& msg, const std::string& part) {
    return msg.find(part) != std::string::npos;
  };
  const std::string base = "name = \"x\"\n[[setting]]\nname = \"a\"\n";
  std::string m = error_of("bad1.toml", base + "level = \"fastest\"\n");
  EXPECT_TRUE(has(m, "bad1.toml")) << m;
  EXPECT_TRUE(has(m, "setting[1].level")) << m;
  m = error_of("bad2.toml", "name = \"x\"\nrepetition = 3\n[[setting]]\nname = \"a\"\n");
  EXPECT_TRUE(has(m, "repetition: unknown field")) << m;
  m = error_of("bad3.toml", "name = \"x\"\nrepetitions = 0\n[[setting]]\nname = \"a\"\n");
  EXPECT_TRUE(has(m, "repetitions")) << m;
  m = error_of("bad4.toml",
               "name = \"x\"\n[experiment]\nepochs = \"ten\"\n[[setting]]\nname = \"a\"\n");
  EXPECT_TRUE(has(m, "experiment.epochs")) << m;
  m = error_of("bad5.toml", base + "vary = [\"weights\"]\n");
  EXPECT_TRUE(has(m, "setting[1].vary")) << m;
  m = error_of("bad6.toml", base + "[[setting]]\nname = \"a\"\n");
  EXPECT_TRUE(has(m, "setting[2].name")) << m;
  m = error_of("bad7.toml", "name = \"x\"\n");
  EXPECT_TRUE(has(m, "setting")) << m;
  m = error_of("bad8.toml", "name = \"x\n");
  EXPECT_TRUE(has(m, "bad8.toml:1")) << m;  // TOML syntax: file and line
  m = error_of("bad9.toml", base + "colour = 3\n");
  EXPECT_TRUE(has(m, "setting[1].colour: unknown field")) << m;
  m = error_of("bad10.toml",
               "name = \"x\"\n[experiment]\npreset = \"lenet6\"\n[[setting]]\nname = \"a\"\n");
  EXPECT_TRUE(has(m, "experiment.preset")) << m;
  m = error_of("bad11.toml", "name = \"x\"\nselection = [\"best\"]\n[[setting]]\nname = \"a\"\n");
  EXPECT_TRUE(has(m, "selection")) << m;
  m = error_of("bad14.toml", base + "[published]\ndefault = 10.8\n");
  EXPECT_TRUE(has(m, "published.default: expected a max - min test accuracy as a fraction")) << m;
  const Study pub =
      load_study(write_file("pub.toml", base + "[published]\ndefault = 0.108\n").string());
  EXPECT_EQ(pub.published.at("default"), 0.108);
  EXPECT_TRUE(has(error_of("missing.toml", ""), "name")) << error_of("missing.toml", "");
  EXPECT_THROW(load_study("/no/such/study.toml"), std::runtime_error);
  // The one validation path: a study's experiments get the checks `detdl train` flags get.
  m = error_of("bad12.toml",
               "name = \"x\"\n[experiment]\noptimizer.momentum = 5.0\n[[setting]]\nname = \"a\"\n");
  EXPECT_TRUE(has(m, "optimizer.momentum: expected a number in [0, 1], got 5")) << m;
  m = error_of("bad13.toml",
               "name = \"x\"\n[experiment]\nschedule.lr = nan\n[[setting]]\nname = \"a\"\n");
  EXPECT_TRUE(has(m, "schedule.lr: expected a finite positive number")) << m;
  // JSON study files: null is refused, not merged away to the engine's default.
  try {
    study_from_json(nlohmann::json::parse(R"({"name": "x", "experiment": {"schedule": {"lr": null}},
                                              "setting": [{"name": "a"}]})"),
                    "s.json");
    ADD_FAILURE() << "null accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(has(e.what(), "s.json.experiment.schedule.lr: null is not a value")) << e.what();
  }
}

TEST(StudyFile, ShippedStudiesParse) {
  int n = 0, sweeps = 0;
  for (const auto& f :
       fs::recursive_directory_iterator(std::string(DETDL_SOURCE_DIR) + "/studies")) {
    const auto ext = f.path().extension();
    if (ext != ".toml" && ext != ".json") continue;
    SCOPED_TRACE(f.path().string());
    // The doctor's benchmark files are not studies (tests/doctor/test_repair.cpp reads them),
    // and studies/results/ holds what studies produced.
    if (f.path().parent_path().filename() == "doctor") continue;
    if (f.path().string().find("/studies/results/") != std::string::npos) continue;
    if (f.path().parent_path().filename() == "butter") {
      // BUTTER's sweeps are past what one study may plan: they are counted (their product
      // of axis lengths x repetitions), and a slice of one data set, shape, size and depth
      // plans like any study.
      nlohmann::json spec = read_study_file(f.path().string());
      const auto sum = summarize_sweep(spec, f.path().string(), [](const std::string&) {
        return std::pair<std::int64_t, std::int64_t>{10, 3};
      });
      std::int64_t points = 1;
      for (auto it = spec["grid"].begin(); it != spec["grid"].end(); ++it) points *= it->size();
      EXPECT_EQ(sum.total.experiments, points);
      EXPECT_EQ(sum.total.runs, points * spec["repetitions"].get<std::int64_t>());
      EXPECT_EQ(sum.by_shape.size(), spec["grid"]["butter.shape"].size());
      for (auto it = spec["grid"].begin(); it != spec["grid"].end(); ++it)
        spec["grid"][it.key()] = nlohmann::json::array({it->front()});
      const Study slice = study_from_json(spec, f.path().string());
      ASSERT_EQ(slice.settings.size(), 1u);
      EXPECT_EQ(slice.settings[0].experiment.net.rfind("butter:", 0), 0u);
      EXPECT_EQ(make_plan(slice).size(), static_cast<std::size_t>(slice.repetitions));
      ++sweeps;
      continue;
    }
    const Study s = load_study(f.path().string());
    EXPECT_FALSE(make_plan(s).empty());
    ++n;
  }
  EXPECT_GE(n, 8);        // tiny, lenet1-mnist, the six dl-variance studies, butter
  EXPECT_EQ(sweeps, 11);  // BUTTER's eight sweeps in eleven files (studies/butter/)
}

// BUTTER's sweep axes compose the net; they go together; [conformance] leaves out nets far
// from their size (blobs: 16 inputs, 4 classes; depth 2 costs 17 w0 + 4 (w0 + 1) = 21 w0 + 4).
TEST(StudyGrid, ButterAxesAndConformance) {
  const std::string base = R"(
name = "b"
repetitions = 2
[experiment]
preset = "butter"
data = "blobs"
epochs = 1
[grid]
"butter.shape" = ["rectangle", "trapezoid"]
"butter.depth" = [2]
"butter.size" = [8, 1024]
[[setting]]
name = "s"
)";
  const Study s = load_study(write_file("b.toml", base).string());
  ASSERT_EQ(s.settings.size(), 4u);
  EXPECT_EQ(s.settings[0].experiment.net, "butter:rectangle:2:8");
  EXPECT_EQ(s.settings[0].name, "s [butter.depth=2 butter.shape=rectangle butter.size=8]");
  EXPECT_EQ(s.settings[3].experiment.net, "butter:trapezoid:2:1024");
  // size 8: w0 = 1 costs 25 (+212%); size 1024: w0 = 49 costs 1033 (+0.9%; 48: 1012).
  EXPECT_NEAR(butter_size_distance("butter:rectangle:2:8", 16, 4), 17.0 / 8, 1e-15);
  EXPECT_NEAR(butter_size_distance("butter:rectangle:2:1024", 16, 4), 9.0 / 1024, 1e-15);
  EXPECT_TRUE(std::isnan(butter_size_distance("mlp:8", 16, 4)));
  const Study c =
      load_study(write_file("c.toml", base + "[conformance]\nmax_size_distance = 0.2\n").string());
  ASSERT_EQ(c.settings.size(), 2u);
  EXPECT_EQ(c.left_out_by_conformance, 2);
  for (const auto& st : c.settings) EXPECT_NE(st.experiment.net.find(":1024"), std::string::npos);
  const auto sum = summarize_sweep(
      read_study_file(
          write_file("c2.toml", base + "[conformance]\nmax_size_distance = 0.2\n").string()),
      "c2", [](const std::string& d) {
        EXPECT_EQ(d, "blobs");
        return std::pair<std::int64_t, std::int64_t>{16, 4};
      });
  EXPECT_EQ(sum.total.experiments, 4);
  EXPECT_EQ(sum.total.outside_20, 2);
  EXPECT_EQ(sum.total.left_out, 2);
  EXPECT_EQ(sum.total.runs, 4);  // the two kept experiments x 2 repetitions
  // The work of the kept runs: parameters x training rows x epochs (1) x repetitions (2),
  // and their cost at butter_core_seconds_per_work(1024); 0 without a rows function.
  EXPECT_EQ(sum.total.work, 0.0);
  const auto costed = summarize_sweep(
      read_study_file(
          write_file("c3.toml", base + "[conformance]\nmax_size_distance = 0.2\n").string()),
      "c3",
      [](const std::string&) {
        return std::pair<std::int64_t, std::int64_t>{16, 4};
      },
      [](const std::string&) { return std::int64_t{1000}; });
  double want = 0;
  for (const char* shape : {"rectangle", "trapezoid"})
    want += 2.0 * 1000.0 *
            static_cast<double>(
                nets::butter_plan(*nets::parse_butter_shape(shape), 1024, 2, 16, 4).params);
  EXPECT_DOUBLE_EQ(costed.total.work, want);
  EXPECT_DOUBLE_EQ(costed.total.core_seconds, want * butter_core_seconds_per_work(1024));
  // The cost table: its points, interpolation in log2(size) between them, held at the ends.
  EXPECT_DOUBLE_EQ(butter_core_seconds_per_work(1 << 10), 3.28e-10);
  EXPECT_DOUBLE_EQ(butter_core_seconds_per_work(1 << 16), 7.0e-11);
  EXPECT_DOUBLE_EQ(butter_core_seconds_per_work(1 << 11), (3.28e-10 + 1.51e-10) / 2);
  EXPECT_DOUBLE_EQ(butter_core_seconds_per_work(8), 3.28e-10);
  EXPECT_DOUBLE_EQ(butter_core_seconds_per_work(std::int64_t{1} << 25), 7.25e-11);
  // Errors, by name.
  std::string no_size = base;
  no_size.replace(no_size.find("\"butter.size\" = [8, 1024]\n"), 26, "");
  EXPECT_NE(error_of("d.toml", no_size).find("go together"), std::string::npos)
      << error_of("d.toml", no_size);
  std::string bad_shape = base;
  bad_shape.replace(bad_shape.find("\"trapezoid\""), 11, "\"oval\"");
  EXPECT_NE(error_of("e.toml", bad_shape).find("grid.butter.shape[2]: expected a BUTTER shape"),
            std::string::npos)
      << error_of("e.toml", bad_shape);
  EXPECT_NE(error_of("f.toml", base + "[conformance]\nmax_size_distance = -1\n")
                .find("conformance.max_size_distance"),
            std::string::npos);
}

}  // namespace
}  // namespace detdl::variance

namespace detdl::variance {
namespace {

// A setting's or grid point's preset takes the base preset's place; the base's other fields
// still hold (a screening study's `epochs = 2` for every net), the setting's own win.
TEST(StudyFile, ASettingsPresetKeepsTheBasesOtherFields) {
  const Study s = load_study(write_file("presets.toml", R"(
name = "screen"
repetitions = 2
[experiment]
preset = "lenet1"
epochs = 2
threads = 1
[[setting]]
name = "lenet1"
vary = ["all"]
[[setting]]
name = "lenet4"
vary = ["all"]
[setting.experiment]
preset = "lenet4"
[[setting]]
name = "lenet5-long"
vary = ["all"]
[setting.experiment]
preset = "lenet5"
epochs = 3
)")
                                 .string());
  ASSERT_EQ(s.settings.size(), 3u);
  EXPECT_EQ(s.settings[0].experiment.net, "lenet1");
  EXPECT_EQ(s.settings[1].experiment.net, "lenet4");
  EXPECT_EQ(s.settings[1].experiment.epochs, 2);  // the base's, not the preset's 50
  EXPECT_EQ(s.settings[1].experiment.threads, 1);
  EXPECT_EQ(s.settings[1].experiment.loss, nets::preset("lenet4").loss);  // the preset's
  EXPECT_EQ(s.settings[2].experiment.net, "lenet5");
  EXPECT_EQ(s.settings[2].experiment.epochs, 3);  // the setting's own field wins
  // A preset as a grid axis: each point's preset under the base's fields.
  const Study g = load_study(write_file("preset-grid.toml", R"(
name = "screen-grid"
[experiment]
preset = "lenet1"
epochs = 2
[grid]
preset = ["lenet4", "lenet5"]
[[setting]]
name = "a"
)")
                                 .string());
  ASSERT_EQ(g.settings.size(), 2u);
  EXPECT_EQ(g.settings[0].experiment.net, "lenet4");
  EXPECT_EQ(g.settings[1].experiment.net, "lenet5");
  EXPECT_EQ(g.settings[0].experiment.epochs, 2);
  EXPECT_EQ(g.settings[1].experiment.epochs, 2);
}

// A field the JSON form leaves out at its default is still an axis: IEEE subnormals against
// TensorFlow's flushing, one setting each, the false one keyed as if the field were absent.
TEST(StudyGrid, FlushSubnormalsIsAnAxis) {
  const std::string text = R"(
name = "ftz"
repetitions = 1
[experiment]
net = "mlp:8"
epochs = 1
[grid]
flush_subnormals = [false, true]
[[setting]]
name = "a"
)";
  const Study s = load_study(write_file("ftz.toml", text).string());
  ASSERT_EQ(s.settings.size(), 2u);
  EXPECT_FALSE(s.settings[0].experiment.flush_subnormals);
  EXPECT_TRUE(s.settings[1].experiment.flush_subnormals);
  const auto plan = make_plan(s);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_NE(plan[0].key, plan[1].key);
  nets::Experiment plain = s.settings[0].experiment;
  EXPECT_FALSE(nets::to_json(plain).contains("flush_subnormals"));
}

TEST(StudyGrid, EverySettingAtEveryPoint) {
  const std::string text = R"(
name = "g"
repetitions = 2
[experiment]
net = "mlp:8"
epochs = 1
[grid]
net = ["mlp:8", "mlp:16"]
"optimizer.kind" = ["sgd", "adam"]
[[setting]]
name = "varied"
vary = ["all"]
[[setting]]
name = "pinned"
[setting.experiment]
net = "mlp:32"
)";
  const Study s = load_study(write_file("g.toml", text).string());
  ASSERT_EQ(s.settings.size(), 8u);  // 2 settings x 2 nets x 2 optimizers
  EXPECT_EQ(s.settings[0].name, "varied [net=mlp:8 optimizer.kind=sgd]");
  EXPECT_EQ(s.settings[1].name, "varied [net=mlp:8 optimizer.kind=adam]");
  EXPECT_EQ(s.settings[1].experiment.optimizer.kind, OptimizerConfig::Kind::adam);
  EXPECT_EQ(s.settings[2].experiment.net, "mlp:16");
  EXPECT_EQ(s.settings[4].experiment.net, "mlp:32");  // the setting's own override wins
  EXPECT_EQ(make_plan(s).size(), 16u);
  std::set<std::string> keys;
  for (const auto& r : make_plan(s)) keys.insert(r.key);
  EXPECT_EQ(keys.size(), 16u);
  auto err = [&](const std::string& grid) {
    try {
      load_study(write_file("bad_grid.toml",
                            "name = \"g\"\n[grid]\n" + grid + "\n[[setting]]\nname = \"a\"\n")
                     .string());
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err("net = []").find("grid.net"), std::string::npos);
  EXPECT_NE(err("net = \"mlp\"").find("grid.net"), std::string::npos);
  EXPECT_NE(err("epochs = [1, \"two\"]").find("grid.epochs[2]"), std::string::npos)
      << err("epochs = [1, \"two\"]");
  EXPECT_NE(err("colour = [1]").find("grid.colour: unknown experiment field 'colour'"),
            std::string::npos);
}

// Issue 9 (12): a grid error says which grid field is unknown, in plain words.
TEST(StudyGrid, UnknownFieldIsNamedInPlainWords) {
  const fs::path f = write_file(
      "study.toml", "name = \"g\"\n[grid]\n\"nope.field\" = [1]\n[[setting]]\nname = \"a\"\n");
  std::string m;
  try {
    load_study(f.string());
  } catch (const std::exception& e) {
    m = e.what();
  }
  EXPECT_EQ(
      m.rfind(f.string() +
                  ": grid.nope.field: unknown experiment field 'nope.field' (experiment fields: ",
              0),
      0u)
      << m;
  EXPECT_EQ(m.find("at grid point"), std::string::npos) << m;
  m = error_of("g2.toml",
               "name = \"g\"\n[grid]\n\"optimizer.knd\" = [\"sgd\"]\n[[setting]]\nname = \"a\"\n");
  EXPECT_NE(m.find("grid.optimizer.knd: unknown experiment field 'optimizer.knd' "
                   "(experiment.optimizer fields: "),
            std::string::npos)
      << m;
  // Known nested fields, device and presets are grid fields.
  EXPECT_EQ(error_of("g3.toml",
                     "name = \"g\"\n[grid]\n\"optimizer.kind\" = [\"sgd\", \"adam\"]\n"
                     "\"seeds.init\" = [1, 2]\ndevice = [\"cpu\"]\n[[setting]]\nname = \"a\"\n"),
            "no error");
}

// Issue 9 (8): a repeated grid value would make two settings of one name and run twice.
TEST(StudyGrid, DuplicateValuesAndNamesAreRefused) {
  const std::string tail = "[[setting]]\nname = \"a\"\n";
  std::string m = error_of("dup.toml", "name = \"g\"\n[grid]\nepochs = [1, 1]\n" + tail);
  EXPECT_NE(m.find("dup.toml: grid.epochs: the value 1 is listed twice"), std::string::npos) << m;
  m = error_of("dup2.toml",
               "name = \"g\"\n[grid]\nepochs = [2, 1, 2.0]\n" + tail);  // 2 and 2.0 are one value
  EXPECT_NE(m.find("grid.epochs: the value 2.0 is listed twice (item 3)"), std::string::npos) << m;
  m = error_of("dup3.toml", "name = \"g\"\n[grid]\nnet = [\"mlp:8\", \"mlp:8\"]\n" + tail);
  EXPECT_NE(m.find("grid.net"), std::string::npos) << m;
  m = error_of("dup5.toml",
               "name = \"g\"\n[[setting]]\nname = \"a [epochs=1]\"\n[[setting]]\nname = \"a\"\n"
               "[setting.experiment]\nepochs = 1\n");
  EXPECT_EQ(m, "no error");  // no grid: names differ
  // The same setting twice is refused (setting names are the runs' identity).
  m = error_of("dup6.toml", "name = \"g\"\n[grid]\nepochs = [1]\n" + tail + tail);
  EXPECT_NE(m.find("setting[2].name: 'a [epochs=1]' is used twice (also setting[1] [epochs=1])"),
            std::string::npos)
      << m;
}

// make_plan refuses two rows of one key even for a Study built in code.
TEST(StudyPlan, DuplicateKeysAreRefused) {
  Study s = load_study(write_file("k.toml", kStudy).string());
  s.settings.push_back(s.settings[0]);  // the same name again: the same keys
  std::string m;
  try {
    make_plan(s);
  } catch (const std::invalid_argument& e) {
    m = e.what();
  }
  EXPECT_NE(m.find("k.toml: setting: setting 'fixed' repetition 0 and setting 'fixed' repetition 0 "
                   "have the same run key"),
            std::string::npos)
      << m;
}

// Issue 9 (7): every study-level count is bounded, checked before anything is allocated.
TEST(StudyBounds, CountsAreBoundedBeforeAnythingIsAllocated) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string m = error_of("huge.toml",
                           "name = \"h\"\nrepetitions = 100000000000\n[[setting]]\nname = \"a\"\n");
  EXPECT_NE(m.find("huge.toml: repetitions: expected an integer from 1 to 10000, got 100000000000"),
            std::string::npos)
      << m;
  // Above INT64_MAX (JSON only: TOML integers are 64-bit signed): not read back as negative.
  m = error_of("huge2.json",
               R"({"name": "h", "repetitions": 18446744073709551615, "setting": [{"name": "a"}]})");
  EXPECT_NE(m.find("huge2.json: repetitions: expected an integer from 1 to 10000"),
            std::string::npos)
      << m;
  // Each count within its bound, the product not: settings x grid points x repetitions.
  std::string settings;
  for (int i = 0; i < 20; ++i) settings += "[[setting]]\nname = \"s" + std::to_string(i) + "\"\n";
  m = error_of("rows.toml",
               "name = \"h\"\nrepetitions = 10000\n[grid]\nepochs = [1, 2]\n" + settings);
  EXPECT_NE(m.find("rows.toml: repetitions: 20 settings x 2 grid points x 10000 repetitions = "
                   "400000 runs, more than "
                   "one study may plan (100000)"),
            std::string::npos)
      << m;
  // Grid combinations: 3 axes of 30 values = 27000 points.
  auto list = [](int n) {
    std::string l = "[";
    for (int i = 1; i <= n; ++i) l += (i > 1 ? ", " : "") + std::to_string(i);
    return l + "]";
  };
  m = error_of("grid.toml", "name = \"h\"\n[grid]\nepochs = " + list(30) +
                                "\nbatch_size = " + list(30) + "\n\"seeds.init\" = " + list(30) +
                                "\n[[setting]]\nname = \"a\"\n");
  EXPECT_NE(m.find("grid.toml: grid: more than 10000 combinations"), std::string::npos) << m;
  // Settings x grid points.
  m = error_of("settings.toml", "name = \"h\"\n[grid]\nepochs = " + list(1000) + "\n" + settings);
  EXPECT_NE(m.find("settings.toml: setting: 20 settings x 1000 grid points"), std::string::npos)
      << m;
  // All of it fails fast: nothing of the asked size was built.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  // A Study built in code is bounded by make_plan.
  Study s = load_study(write_file("ok.toml", kStudy).string());
  s.repetitions = 100'000'000'000;
  EXPECT_THROW(make_plan(s), std::invalid_argument);
  // At the bounds themselves a study is fine.
  EXPECT_EQ(error_of("edge.toml",
                     "name = \"h\"\nrepetitions = 10000\n[experiment]\nepochs = 1\n"
                     "[[setting]]\nname = \"a\"\n"),
            "no error");
}

// Issue 9 (12): a study whose runs cannot run (0 epochs) is refused before anything runs,
// naming the file, the setting and the field.
TEST(StudyFile, ZeroEpochsAreRefusedNamingSettingAndField) {
  std::string m =
      error_of("zero.toml", "name = \"z\"\n[experiment]\nepochs = 0\n[[setting]]\nname = \"a\"\n");
  EXPECT_NE(m.find("zero.toml: experiment.epochs (setting[1]): 0 epochs cannot run; expected at "
                   "least 1 (setting 'a')"),
            std::string::npos)
      << m;
  m = error_of("zero2.toml",
               "name = \"z\"\n[[setting]]\nname = \"a\"\n[[setting]]\nname = \"b\"\n"
               "[setting.experiment]\nepochs = 0\n");
  EXPECT_NE(m.find("zero2.toml: setting[2].experiment.epochs: 0 epochs cannot run"),
            std::string::npos)
      << m;
  m = error_of("zero3.toml", "name = \"z\"\n[grid]\nepochs = [2, 0]\n[[setting]]\nname = \"a\"\n");
  EXPECT_NE(m.find("zero3.toml: grid.epochs (setting[1] [epochs=0]): 0 epochs cannot run"),
            std::string::npos)
      << m;
}

// The same refusals from the command line: `study plan` and `study run` stop before planning
// or running anything, with the file and field in the message.
TEST(StudyBounds, CommandLineRefusesBeforePlanningOrRunning) {
  const fs::path huge = write_file(
      "cli-huge.toml", "name = \"h\"\nrepetitions = 100000000000\n[[setting]]\nname = \"a\"\n");
  auto r = detdl::test_util::run_detdl("study plan " + huge.string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("cli-huge.toml: repetitions"), std::string::npos) << r.output;
  r = detdl::test_util::run_detdl(
      "study plan --name f --repetitions 100000000000 --setting name=a");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("repetitions"), std::string::npos) << r.output;
  const fs::path zero = write_file(
      "cli-zero.toml", "name = \"z\"\n[experiment]\nepochs = 0\n[[setting]]\nname = \"a\"\n");
  const fs::path store = zero.parent_path() / "cli-zero.sqlite";
  for (const char* cmd : {"study plan ", "study run "}) {
    r = detdl::test_util::run_detdl(cmd + zero.string() + " --store " + store.string());
    EXPECT_NE(r.status, 0) << cmd;
    EXPECT_NE(r.output.find("cli-zero.toml: experiment.epochs (setting[1]): 0 epochs cannot run"),
              std::string::npos)
        << r.output;
  }
  EXPECT_FALSE(fs::exists(store));  // nothing ran, nothing was created
}

// A small file that includes a sweep and narrows it: the same settings and run keys as the
// sweep's slice; errors name the file and axis; include cycles stop.
TEST(StudySweep, AFileIncludesASweepAndNarrowsIt) {
  const fs::path sweep = write_file("inc-sweep.toml", R"(
name = "inc"
repetitions = 2
[experiment]
preset = "butter"
data = "blobs"
epochs = 1
[grid]
"butter.shape" = ["rectangle", "trapezoid", "exponential"]
"butter.depth" = [2, 3, 4]
"butter.size" = [64, 128, 256, 512]
[[setting]]
name = "s"
)");
  const fs::path slice = write_file("inc-slice.toml", R"(
include = "inc-sweep.toml"
[experiment]
epochs = 2
[grid]
"butter.size" = [512, 128]
"butter.shape" = ["trapezoid"]
)");
  const Study st = load_study(slice.string());
  EXPECT_EQ(st.name, "inc");
  ASSERT_EQ(st.settings.size(), 3u * 2u);                              // depths x sizes, one shape
  EXPECT_EQ(st.settings[0].experiment.net, "butter:trapezoid:2:128");  // the sweep's order
  EXPECT_EQ(st.settings[0].experiment.epochs, 2);
  nlohmann::json spec = read_study_file(sweep.string());
  spec["grid"]["butter.size"] = {128, 512};
  spec["grid"]["butter.shape"] = {"trapezoid"};
  spec["experiment"]["epochs"] = 2;
  const auto want = make_plan(study_from_json(spec, "sweep"));
  const auto got = make_plan(st);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].key, want[i].key);

  auto message = [](const fs::path& f) {
    try {
      load_study(f.string());
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string m = message(
      write_file("inc-bad1.toml", "include = \"inc-sweep.toml\"\n[grid]\nbatch_size = [8]\n"));
  EXPECT_NE(m.find("inc-bad1.toml: grid.batch_size: not an axis of the included"),
            std::string::npos)
      << m;
  m = message(write_file("inc-bad2.toml",
                         "include = \"inc-sweep.toml\"\n[grid]\n\"butter.size\" = [100]\n"));
  EXPECT_NE(m.find("grid.butter.size: 100 is not one of the included axis's values"),
            std::string::npos)
      << m;
  m = message(write_file("inc-bad3.toml", "include = \"no-such.toml\"\n"));
  EXPECT_NE(m.find("no-such.toml"), std::string::npos) << m;
  m = message(write_file("inc-bad4.toml", "include = \"/dev/zero\"\n"));  // never read
  EXPECT_NE(m.find("/dev/zero: cannot read it (no such regular file)"), std::string::npos) << m;
  write_file("inc-cycle-a.toml", "include = \"inc-cycle-b.toml\"\n");
  m = message(write_file("inc-cycle-b.toml", "include = \"inc-cycle-a.toml\"\n"));
  EXPECT_NE(m.find("nested includes"), std::string::npos) << m;
}

// A sweep past the bounds: `--summary` counts it, `--grid` slices it (only the sweep's own
// values), and the slice plans and runs like any study.
TEST(StudySweep, SummaryAndSlicesFromTheCommandLine) {
  const fs::path sweep = write_file("sweep.toml", R"(
name = "sw"
repetitions = 3
[experiment]
preset = "butter"
data = "blobs"
epochs = 1
[grid]
"butter.shape" = ["rectangle", "trapezoid", "exponential"]
"butter.depth" = [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20]
"butter.size" = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144]
batch_size = [16, 32, 64, 128, 256, 512, 1024]
"schedule.lr" = [1e-2, 1e-3, 1e-4]
[[setting]]
name = "s"
)");
  auto r = detdl::test_util::run_detdl("study plan " + sweep.string());
  EXPECT_NE(r.status, 0);  // 14,112 grid points: past one study's plan
  EXPECT_NE(r.output.find("--grid"), std::string::npos) << r.output;
  r = detdl::test_util::run_detdl("study plan " + sweep.string() + " --summary");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("14112 experiments, 42336 runs"), std::string::npos) << r.output;
  {  // per shape: a third of the experiments and runs
    std::istringstream rows(r.output.substr(r.output.find("\nrectangle ") + 1));
    std::string name;
    long long experiments = 0, runs = 0;
    rows >> name >> experiments >> runs;
    EXPECT_EQ(experiments, 4704);
    EXPECT_EQ(runs, 14112);
  }
  const std::string slice =
      " --grid butter.shape=trapezoid --grid butter.depth=3 --grid "
      "butter.size=1024,2048 --grid batch_size=64 --grid schedule.lr=1e-3";
  r = detdl::test_util::run_detdl("study plan " + sweep.string() + slice);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1 + 2 * 3) << r.output;
  EXPECT_NE(r.output.find("s [batch_size=64 butter.depth=3 butter.shape=trapezoid butter.size=2048 "
                          "schedule.lr=0.001]"),
            std::string::npos)
      << r.output;
  r = detdl::test_util::run_detdl("study plan " + sweep.string() + " --grid butter.size=1000");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--grid butter.size: 1000 is not one of the axis's values"),
            std::string::npos)
      << r.output;
  r = detdl::test_util::run_detdl("study plan " + sweep.string() + " --grid colour=red");
  EXPECT_NE(r.output.find("no grid axis 'colour'"), std::string::npos) << r.output;
}

// A sweep run slice by slice into one store is still the whole study: the store keeps the
// study file's grid, not the last slice's, so the tables count the runs of every slice.
TEST(StudySweep, SlicesRunIntoOneStoreAreOneStudy) {
  const fs::path sweep = write_file("slices.toml", R"(
name = "slices"
repetitions = 2
[experiment]
preset = "butter"
data = "blobs"
epochs = 1
[grid]
"butter.shape" = ["rectangle"]
"butter.depth" = [2]
"butter.size" = [64, 128]
[[setting]]
name = "s"
)");
  const fs::path store = fs::path(::testing::TempDir()) / "slices.sqlite";
  fs::remove(store);
  for (const char* size : {"64", "128"}) {
    const auto r =
        detdl::test_util::run_detdl("study run " + sweep.string() + " --store " + store.string() +
                                    " --quiet --grid butter.size=" + size);
    ASSERT_EQ(r.status, 0) << r.output;
  }
  const auto r = detdl::test_util::run_detdl("study table " + store.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("study slices: 4 runs, 2 settings"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace detdl::variance
