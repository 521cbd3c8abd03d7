// servesim merge PART... --out FILE.csv
#include <iostream>
#include <memory>

#include "sim/cli/commands.h"
#include "sim/cli/run.h"
#include "sim/sweep/sweep.h"

namespace servesim {

void add_merge_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("merge", "combine the part files of a sharded sweep into its CSV");
  auto parts = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("parts", *parts, "part files written by `servesim sweep --shard i/N` (one per shard)")->required();
  cmd->add_option("--out", *out, "the CSV to write (the same bytes as the unsharded sweep)")->required();
  cmd->callback([parts, out] {
    const MergeOutput merged = merge_parts(*parts);
    OutputFiles files;
    files.expect(*out);
    files.add(*out, merged.csv);
    files.commit();
    std::cout << "wrote " << *out << ": " << merged.points << " points from " << merged.parts
              << (merged.parts == 1 ? " part" : " parts") << "\n";
  });
}

}  // namespace servesim
