// `detdl ops`: the op registry (engine/ops/registry.h) as a table.
#include <cstdio>

#include "engine/ops/registry.h"
#include "tools/commands.h"

namespace detdl::tools {

void add_ops_command(CLI::App& app) {
  app.add_subcommand("ops", "list the engine's ops, their op family, kernels and reduction order")->callback([] {
    std::printf("%-22s %-12s %-28s %-24s %s\n", "op", "family", "cpu kernel", "cuda kernel", "reduction order");
    for (const auto& op : kOps)
      std::printf("%-22s %-12s %-28s %-24s %s\n", op.name, std::string(op_family_name(op.family)).c_str(),
                  op.cpu_kernel, *op.cuda_kernel ? op.cuda_kernel : "-", op.reduction);
  });
}

}  // namespace detdl::tools
