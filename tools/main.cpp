// detdl: the command line. Subcommands: train, study, report, twin, doctor, golden, hash, ops, version (docs/cli.md).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"detdl: a deep-learning engine whose determinism you can prove"};
  app.require_subcommand(1);
  detdl::tools::add_train_command(app);
  detdl::tools::add_hash_command(app);
  detdl::tools::add_ops_command(app);
  detdl::tools::add_golden_command(app);
  detdl::tools::add_study_command(app);
  detdl::tools::add_twin_command(app);
  detdl::tools::add_doctor_command(app);
  detdl::tools::add_doctor_bench_command(app);
  app.add_subcommand("version", "print the version")->callback([] {
    std::cout << "detdl " << DETDL_VERSION << "\n";
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "detdl: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
