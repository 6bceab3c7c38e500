// Study files and plans: parsing (TOML and JSON), errors that name the file and field,
// seeds derived per repetition only for the sources a setting varies, stable keys.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "variance/study.h"

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
)").string());
  ASSERT_EQ(s.settings.size(), 2u);
  EXPECT_EQ(s.settings[0].experiment.device, Device::cpu);
  EXPECT_EQ(s.settings[1].experiment.device, Device::cuda);
  const auto plan = make_plan(s);
  ASSERT_EQ(plan.size(), 4u);
  std::set<std::string> keys;
  for (const auto& row : plan) keys.insert(row.key);
  EXPECT_EQ(keys.size(), 4u);  // the device is part of a run's identity
  EXPECT_NE(error_of("bad-device.toml", "name = \"d\"\n[[setting]]\nname = \"a\"\ndevice = \"tpu\"\n").find("device"),
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
)").string());
  ASSERT_EQ(s.settings.size(), 2u);
  EXPECT_EQ(s.settings[0].experiment.implementation, Implementation::own);
  EXPECT_EQ(s.settings[1].experiment.implementation, Implementation::vendor);
  const auto plan = make_plan(s);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_NE(plan[0].key, plan[1].key);  // the implementation is part of a run's identity
  EXPECT_NE(error_of("bad-impl.toml", "name = \"d\"\n[[setting]]\nname = \"a\"\nimplementation = \"mkl\"\n")
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

TEST(StudyFile, ErrorsNameTheFileAndField) {
  auto has = [](const std::string& msg, const std::string& part) { return msg.find(part) != std::string::npos; };
  const std::string base = "name = \"x\"\n[[setting]]\nname = \"a\"\n";
  std::string m = error_of("bad1.toml", base + "level = \"fastest\"\n");
  EXPECT_TRUE(has(m, "bad1.toml")) << m;
  EXPECT_TRUE(has(m, "setting[1].level")) << m;
  m = error_of("bad2.toml", "name = \"x\"\nrepetition = 3\n[[setting]]\nname = \"a\"\n");
  EXPECT_TRUE(has(m, "repetition: unknown field")) << m;
  m = error_of("bad3.toml", "name = \"x\"\nrepetitions = 0\n[[setting]]\nname = \"a\"\n");
  EXPECT_TRUE(has(m, "repetitions")) << m;
  m = error_of("bad4.toml", "name = \"x\"\n[experiment]\nepochs = \"ten\"\n[[setting]]\nname = \"a\"\n");
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
  m = error_of("bad10.toml", "name = \"x\"\n[experiment]\npreset = \"lenet6\"\n[[setting]]\nname = \"a\"\n");
  EXPECT_TRUE(has(m, "experiment.preset")) << m;
  m = error_of("bad11.toml", "name = \"x\"\nselection = [\"best\"]\n[[setting]]\nname = \"a\"\n");
  EXPECT_TRUE(has(m, "selection")) << m;
  EXPECT_TRUE(has(error_of("missing.toml", ""), "name")) << error_of("missing.toml", "");
  EXPECT_THROW(load_study("/no/such/study.toml"), std::runtime_error);
}

TEST(StudyFile, ShippedStudiesParse) {
  int n = 0;
  for (const auto& f : fs::recursive_directory_iterator(std::string(DETDL_SOURCE_DIR) + "/studies")) {
    const auto ext = f.path().extension();
    if (ext != ".toml" && ext != ".json") continue;
    SCOPED_TRACE(f.path().string());
    const Study s = load_study(f.path().string());
    EXPECT_FALSE(make_plan(s).empty());
    ++n;
  }
  EXPECT_GE(n, 8);  // tiny, lenet1-mnist, the six dl-variance studies, butter
}

}  // namespace
}  // namespace detdl::variance

namespace detdl::variance {
namespace {

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
      load_study(write_file("bad_grid.toml", "name = \"g\"\n[grid]\n" + grid + "\n[[setting]]\nname = \"a\"\n").string());
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err("net = []").find("grid.net"), std::string::npos);
  EXPECT_NE(err("net = \"mlp\"").find("grid.net"), std::string::npos);
  EXPECT_NE(err("epochs = [1, \"two\"]").find("epochs"), std::string::npos);
  EXPECT_NE(err("colour = [1]").find("colour: unknown field"), std::string::npos);
}

}  // namespace
}  // namespace detdl::variance
