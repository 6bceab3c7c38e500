// `detdl golden`: computes the golden weight hashes (nets/golden.h) and checks them against
// a file or writes the file.
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "engine/cuda_backend.h"
#include "nets/golden.h"
#include "tools/cli_checks.h"
#include "tools/commands.h"

namespace detdl::tools {

void add_golden_command(CLI::App& app) {
  struct Args {
    std::string check, write, device = "cpu";
    int threads = 1;
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand(
      "golden", "compute each network's golden weight hash; check or write the file");
  c->add_option("--check", a->check,
                "compare with this file (tests/golden/hashes.json); exit 1 on any mismatch");
  c->add_option("--write", a->write, "write the hashes to this file");
  c->add_option("--threads", a->threads, "CPU threads")->check(integer_text(1, 1024));
  c->add_option("--device", a->device,
                "where the runs train: cpu (default) or cuda (must give the same hashes)");
  c->callback([a] {
    const Device device = parse_device(a->device, "--device");
    if (device == Device::cuda) gpu::require("--device cuda");
    nlohmann::json want;
    if (!a->check.empty()) {
      std::ifstream in(a->check);
      if (!in) throw std::runtime_error("--check: cannot read " + a->check);
      try {
        want = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error("--check " + a->check + ": not valid JSON: " + e.what());
      }
    }
    nlohmann::json got = nlohmann::json::object();
    int bad = 0;
    for (const auto& gc : nets::golden_cases()) {
      const std::string h = nets::golden_hash(gc, a->threads, device);
      got[gc.name] = h;
      std::string verdict;
      if (!a->check.empty()) {
        const bool ok = want.contains(gc.name) && want[gc.name] == h;
        bad += !ok;
        verdict = ok ? "  ok"
                     : "  MISMATCH (file: " +
                           (want.contains(gc.name) ? want[gc.name].get<std::string>() : "missing") +
                           ")";
      }
      std::printf("%-10s %s%s\n", gc.name.c_str(), h.c_str(), verdict.c_str());
      std::fflush(stdout);
    }
    if (!a->write.empty()) {
      std::ofstream out(a->write);
      out << got.dump(2) << "\n";
      if (!out) throw std::runtime_error("--write: cannot write " + a->write);
    }
    if (bad)
      throw std::runtime_error(std::to_string(bad) + " golden hash(es) differ from " + a->check);
  });
}

}  // namespace detdl::tools
