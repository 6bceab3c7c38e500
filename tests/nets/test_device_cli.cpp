// The device as a user meets it without a GPU: the Experiment's "device" field (JSON round
// trip, strict checks, absent for cpu so CPU records keep their form), and `detdl train
// --device` / `detdl golden --device`: a bad name names the option, and cuda where CUDA
// cannot run (built without it, or no device) fails at once with a message naming the
// option, not a crash. The GPU side is tests/gpu/test_gpu_engine.cpp.
#include <gtest/gtest.h>

#include "tests/cli_run.h"
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "engine/cuda_backend.h"
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

TEST(ExperimentDevice, RoundTripsAndIsOmittedForCpu) {
  Experiment e = preset("lenet5");
  EXPECT_EQ(e.device, Device::cpu);
  EXPECT_FALSE(to_json(e).contains("device"));  // CPU records keep their pre-device form
  e.device = Device::cuda;
  const auto j = to_json(e);
  ASSERT_TRUE(j.contains("device"));
  EXPECT_EQ(j["device"], "cuda");
  const Experiment back = experiment_from_json(j);
  EXPECT_EQ(back.device, Device::cuda);
  EXPECT_EQ(to_json(back), j);
  nlohmann::json cpu = to_json(preset("lenet5"));
  cpu["device"] = "cpu";
  EXPECT_EQ(experiment_from_json(cpu).device, Device::cpu);
}

TEST(ExperimentDevice, BadValuesNameTheField) {
  EXPECT_NE(error_of({{"device", "tpu"}}).find("study.toml.device"), std::string::npos)
      << error_of({{"device", "tpu"}});
  EXPECT_NE(error_of({{"device", "tpu"}}).find("tpu"), std::string::npos);
  EXPECT_NE(error_of({{"device", 1}}).find("study.toml.device"), std::string::npos)
      << error_of({{"device", 1}});
}

TEST(ExperimentDevice, PrintConfigShowsTheDeviceFlag) {
  auto r = run("train --device cuda --print-config");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"device\": \"cuda\""), std::string::npos) << r.output;
  r = run("train --print-config");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("\"device\""), std::string::npos) << r.output;
}

TEST(ExperimentDevice, BadDeviceNamesTheOption) {
  auto r = run("train --device gpu --epochs 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--device"), std::string::npos) << r.output;
  r = run("golden --device tpu");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--device"), std::string::npos) << r.output;
}

TEST(ExperimentDevice, CudaWithoutCudaIsAClearError) {
  if (gpu::available()) GTEST_SKIP() << "a CUDA device is available";
  auto r = run("train --device cuda --epochs 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--device cuda"), std::string::npos) << r.output;
#ifndef DETDL_HAVE_CUDA
  EXPECT_NE(r.output.find("built without CUDA"), std::string::npos) << r.output;
#endif
  r = run("golden --device cuda --check " + std::string(DETDL_SOURCE_DIR) +
          "/tests/golden/hashes.json");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--device cuda"), std::string::npos) << r.output;
  Experiment e;
  e.device = Device::cuda;
  e.epochs = 1;
  try {
    run_experiment(e);
    FAIL() << "run_experiment on cuda did not throw";
  } catch (const std::runtime_error& ex) {
    EXPECT_NE(std::string(ex.what()).find("device"), std::string::npos) << ex.what();
  }
}

}  // namespace
}  // namespace detdl::nets
