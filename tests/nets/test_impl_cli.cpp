// The implementation choice (own kernels vs vendor libraries) as a user meets it without a
// GPU: the Experiment's "implementation" field (JSON round trip, strict checks, absent for
// own so existing records and run keys keep their form), the run context it sets, and
// `detdl train --impl`: a bad name names the option, and vendor on the CPU is refused with
// a clear message (the vendor libraries run only on the GPU; docs/gpu.md). The GPU side is
// tests/gpu/test_gpu_cudnn.cpp.
#include <gtest/gtest.h>

#include "tests/cli_run.h"
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "nets/experiment.h"

namespace detdl::nets {
namespace {

using Result = detdl::test_util::CliResult;
Result run(const std::string& args) { return detdl::test_util::run_detdl(args); }

std::string error_of(const nlohmann::json& j) {
  try {
    experiment_from_json(j, "study.toml");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(ExperimentImplementation, RoundTripsAndIsOmittedForOwn) {
  Experiment e = preset("lenet5");
  EXPECT_EQ(e.implementation, Implementation::own);
  EXPECT_FALSE(to_json(e).contains("implementation"));  // existing records keep their form
  EXPECT_EQ(e.context().implementation, Implementation::own);
  e.device = Device::cuda;
  e.implementation = Implementation::vendor;
  const auto j = to_json(e);
  ASSERT_TRUE(j.contains("implementation"));
  EXPECT_EQ(j["implementation"], "vendor");
  const Experiment back = experiment_from_json(j);
  EXPECT_EQ(back.implementation, Implementation::vendor);
  EXPECT_EQ(back.context().implementation, Implementation::vendor);
  EXPECT_EQ(to_json(back), j);
  nlohmann::json own = to_json(preset("lenet5"));
  own["implementation"] = "own";
  EXPECT_EQ(experiment_from_json(own).implementation, Implementation::own);
  EXPECT_FALSE(to_json(experiment_from_json(own)).contains("implementation"));
}

TEST(ExperimentImplementation, BadValuesNameTheField) {
  const std::string bad = error_of({{"implementation", "cudnn"}});
  EXPECT_NE(bad.find("study.toml.implementation"), std::string::npos) << bad;
  EXPECT_NE(bad.find("cudnn"), std::string::npos) << bad;
  const std::string wrong_type = error_of({{"implementation", 1}});
  EXPECT_NE(wrong_type.find("study.toml.implementation"), std::string::npos) << wrong_type;
}

TEST(ExperimentImplementation, VendorOnTheCpuIsRefused) {
  Experiment e;
  e.epochs = 1;
  e.implementation = Implementation::vendor;  // device cpu
  try {
    run_experiment(e);
    FAIL() << "run_experiment with implementation vendor on the CPU did not throw";
  } catch (const std::invalid_argument& ex) {
    EXPECT_NE(std::string(ex.what()).find("implementation"), std::string::npos) << ex.what();
    EXPECT_NE(std::string(ex.what()).find("cuda"), std::string::npos) << ex.what();
  }
}

TEST(ExperimentImplementation, ImplFlag) {
  auto r = run("train --device cuda --impl vendor --print-config");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"implementation\": \"vendor\""), std::string::npos) << r.output;
  r = run("train --impl own --print-config");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("\"implementation\""), std::string::npos) << r.output;
  r = run("train --impl cublas --epochs 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--impl"), std::string::npos) << r.output;
  r = run("train --impl vendor --epochs 1");  // device cpu
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--impl vendor needs --device cuda"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace detdl::nets
