#pragma once
#include <CLI/CLI.hpp>

namespace detdl::tools {
void add_train_command(CLI::App& app);
void add_hash_command(CLI::App& app);
void add_ops_command(CLI::App& app);
void add_golden_command(CLI::App& app);
void add_study_command(CLI::App& app);
void add_twin_command(CLI::App& app);
void add_doctor_command(CLI::App& app);
void add_doctor_bench_command(CLI::App& app);
}  // namespace detdl::tools
