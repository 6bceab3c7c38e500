// Every op of the registry (engine/ops/registry.h) is covered by a gradient check, a
// thread-count test and a CPU == GPU test, and each test the registry names exists: the
// test binary lists it (`<binary> --gtest_list_tests`, binaries under DETDL_BINARY_DIR/tests).
// A binary of tests/gpu that this build does not have (a CPU-only build) or cannot list (no
// CUDA driver) is checked in its source, tests/gpu/<binary>.cpp, instead. A failure names
// the op, the column and the test.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "engine/ops/registry.h"

using namespace detdl;
namespace fs = std::filesystem;

namespace {

const fs::path kTests = fs::path(DETDL_BINARY_DIR) / "tests";

// "Suite.Name" of every test `binary --gtest_list_tests` prints, or nullopt when it cannot run.
std::optional<std::set<std::string>> listed_tests(const fs::path& binary) {
  std::string cmd = "\"";  // (appended, not "\"" + s: GCC 12 warns falsely on that)
  cmd += binary.string();
  cmd += "\" --gtest_list_tests 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return std::nullopt;
  std::set<std::string> out;
  std::string suite;
  std::array<char, 1024> buf{};
  while (fgets(buf.data(), static_cast<int>(buf.size()), p)) {
    std::string line(buf.data());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.empty()) continue;
    // "Suite." at column 0, then "  Name" (parameterised: "  Name/0  # GetParam() = ...").
    if (line[0] != ' ') {
      suite = line.substr(0, line.find_first_of(" #"));
    } else {
      const std::string name = line.substr(2, line.find_first_of(" #", 2) - 2);
      out.insert(suite + name);
    }
  }
  if (pclose(p) != 0) return std::nullopt;
  return out;
}

// "Suite.Name" of every TEST / TEST_F / TEST_P in a source file.
std::set<std::string> source_tests(const fs::path& src) {
  std::ifstream in(src);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  static const std::regex test_re(R"(\bTEST(?:_F|_P)?\(\s*(\w+)\s*,\s*(\w+)\s*\))");
  std::set<std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), test_re), end; it != end; ++it)
    out.insert((*it)[1].str() + "." + (*it)[2].str());
  return out;
}

// The tests of `binary` (cached), or an error message.
const std::set<std::string>* tests_of(const std::string& binary, std::string& error) {
  static std::map<std::string, std::set<std::string>> cache;
  if (auto it = cache.find(binary); it != cache.end()) return &it->second;
  const fs::path gpu_src = fs::path(DETDL_SOURCE_DIR) / "tests" / "gpu" / (binary + ".cpp");
  for (const fs::path& bin : {kTests / binary, kTests / "gpu" / binary}) {
    if (!fs::exists(bin)) continue;
    if (auto listed = listed_tests(bin)) return &(cache[binary] = std::move(*listed));
    if (!fs::exists(gpu_src)) {
      error = bin.string() + " --gtest_list_tests failed";
      return nullptr;
    }
  }
  if (fs::exists(gpu_src)) return &(cache[binary] = source_tests(gpu_src));
  error = "no test binary " + binary + " under " + kTests.string() + " (is it built?)";
  return nullptr;
}

// "" when `ref` ("binary:Suite.Name") names a test that exists, else why not.
std::string check_ref(const char* ref) {
  if (!ref || !*ref) return "no test named";
  const std::string r(ref);
  const auto colon = r.find(':');
  if (colon == std::string::npos || r.find('.', colon) == std::string::npos)
    return "'" + r + "' is not binary:Suite.Name";
  std::string error;
  const auto* tests = tests_of(r.substr(0, colon), error);
  if (!tests) return error;
  if (!tests->count(r.substr(colon + 1))) return "'" + r + "': the binary has no such test";
  return "";
}

}  // namespace

TEST(OpCoverage, EveryOpHasAGradientThreadAndCpuGpuTestThatExists) {
  for (const OpInfo& op : kOps) {
    const std::pair<const char*, const char*> columns[] = {{"gradient check", op.tests.gradient},
                                                           {"thread-count test", op.tests.threads},
                                                           {"CPU == GPU test", op.tests.cuda}};
    for (const auto& [what, ref] : columns) {
      const std::string why = check_ref(ref);
      EXPECT_TRUE(why.empty()) << "op " << op.name << ": " << what << ": " << why;
    }
  }
}

TEST(OpCoverage, TheCheckSeesAMissingTest) {
  EXPECT_EQ(check_ref(""), "no test named");
  EXPECT_NE(check_ref("test_dense:Arith.NoSuchTest"), "");
  EXPECT_NE(check_ref("test_no_such_binary:A.B"), "");
  EXPECT_EQ(check_ref("test_dense:Arith.GradientsMatchFiniteDifferences"), "");
}
