// servesim: a discrete-event simulator of LLM inference serving.
#include <iostream>

#include "models/common/error.h"
#include "sim/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"servesim: predict TTFT, TPOT and tail latency of LLM serving deployments"};
  app.require_subcommand(1);
  servesim::add_run_command(app);
  servesim::add_step_command(app);
  servesim::add_calibrate_command(app);
  servesim::add_validate_command(app);
  servesim::add_collective_command(app);
  servesim::add_ingest_command(app);
  servesim::add_explain_command(app);
  servesim::add_report_command(app);
  servesim::add_transfer_command(app);
  servesim::add_sweep_command(app);
  servesim::add_merge_command(app);
  servesim::add_plan_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "servesim: error: " << e.what() << "\n";
    return 2;
  } catch (const servesim::InputError& e) {
    std::cerr << "servesim: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "servesim: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
