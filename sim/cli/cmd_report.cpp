// servesim report RUN_DIR -o FILE.html
// Renders a run directory (servesim run --out RUN_DIR, optionally with --timeseries RUN_DIR/timeseries.csv) as one
// self-contained HTML file with inline SVG charts (sim/report/html_report.h). A missing or malformed run directory
// is an InputError naming the file; the output is written through a temporary file and a rename.
#include <iostream>
#include <memory>
#include <string>

#include "sim/cli/commands.h"
#include "sim/cli/run.h"
#include "sim/io/run_dir.h"
#include "sim/report/html_report.h"

namespace servesim {

void add_report_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("report", "render a run directory as one self-contained HTML file (inline SVG)");
  auto dir = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("run_dir", *dir, "run directory written by `servesim run --out`")->required();
  cmd->add_option("-o,--out", *out, "HTML file to write")->required();
  cmd->callback([=] {
    const RunDir run = read_run_dir(*dir);
    write_file_atomically(*out, render_html_report(run, explain_text_for_report(run)));
    std::cout << "wrote " << *out << "\n";
  });
}

}  // namespace servesim
