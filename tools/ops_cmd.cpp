// `detdl ops`: the op registry (engine/ops/registry.h) as a table, with the tests that cover
// each op (binary:Suite.Name; tests/engine/test_op_coverage.cpp checks they exist).
#include <cstdio>
#include <string>

#include "engine/ops/registry.h"
#include "tools/commands.h"

namespace detdl::tools {

void add_ops_command(CLI::App& app) {
  app.add_subcommand(
         "ops",
         "list the engine's ops, their op family, kernels, reduction order and covering tests")
      ->callback([] {
        std::printf("%-22s %-13s %-28s %-28s %s\n", "op", "family", "cpu kernel", "cuda kernel",
                    "reduction order");
        for (const auto& op : kOps)
          std::printf("%-22s %-13s %-28s %-28s %s\n", op.name,
                      std::string(op_family_name(op.family)).c_str(), op.cpu_kernel,
                      *op.cuda_kernel ? op.cuda_kernel : "-", op.reduction);
        std::printf("\n%-22s %-58s %-52s %s\n", "op", "gradient test", "thread-count test",
                    "cpu == gpu test");
        for (const auto& op : kOps)
          std::printf("%-22s %-58s %-52s %s\n", op.name, op.tests.gradient, op.tests.threads,
                      op.tests.cuda);
      });
}

}  // namespace detdl::tools
