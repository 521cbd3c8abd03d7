// The composition root sim/scenario/ (issue 12, part 0): InputError's structured fields, errors placed from those
// fields (never from the message text), and the catalogs read once per process.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "helpers.h"
#include "models/common/config.h"
#include "models/common/error.h"
#include "models/common/input_file.h"
#include "sim/scenario/catalogs.h"
#include "sim/scenario/scenario.h"

using namespace servesim;

namespace {

const std::string kWorkload =
    "[workload]\nnum_requests = 1\n[workload.arrival]\nimpl = \"poisson\"\nrate = 1.0\n"
    "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 10\n[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 10\n";

template <class F>
InputError caught(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e;
  }
  FAIL("no InputError");
  return InputError("unreachable");
}

}  // namespace

TEST_CASE("an InputError keeps its message and carries file, line, key and detail", "[scenario-root]") {
  const InputError plain("text of its own");
  CHECK(std::string(plain.what()) == "text of its own");
  CHECK(plain.file().empty());
  CHECK_FALSE(plain.line());
  CHECK(plain.key().empty());
  CHECK(plain.detail() == "text of its own");
  CHECK_FALSE(plain.placed());

  const InputError keyed(ErrorPlace{"", std::nullopt, "parallel.tensor_parallel_size"}, "8 does not divide 12");
  CHECK(std::string(keyed.what()) == "parallel.tensor_parallel_size: 8 does not divide 12");
  CHECK(keyed.key() == "parallel.tensor_parallel_size");
  CHECK(keyed.detail() == "8 does not divide 12");
  CHECK(keyed.placed());

  const InputError full(ErrorPlace{"s.toml", 12, "engine.max_num_seqs"}, "must be > 0");
  CHECK(std::string(full.what()) == "s.toml:12: engine.max_num_seqs: must be > 0");
  const InputError copy = full;  // copies share the fields
  CHECK(copy.line() == std::optional<std::int64_t>(12));
  CHECK(copy.file() == "s.toml");
}

TEST_CASE("Config errors carry the file, line and dotted key they name", "[scenario-root]") {
  const Config c = Config::from_string("[engine]\nmax_num_seqs = -1\n\n[sim]\nseed = 1\n", "doc.toml");
  const Config eng = c.table("engine");
  const InputError e = caught([&] { (void)eng.positive_int("max_num_seqs"); });
  CHECK(std::string(e.what()) == "doc.toml:2: engine.max_num_seqs: must be a positive integer (got -1)");
  CHECK(e.file() == "doc.toml");
  CHECK(e.line() == std::optional<std::int64_t>(2));
  CHECK(e.key() == "engine.max_num_seqs");
  CHECK(e.detail() == "must be a positive integer (got -1)");
  // A missing key: the table's place.
  const InputError missing = caught([&] { (void)c.table("sim").str("name"); });
  CHECK(missing.file() == "doc.toml");
  CHECK(missing.line() == std::optional<std::int64_t>(4));
  CHECK(missing.key() == "sim");
  // Unknown keys (the first key nobody read): the key's own line.
  const InputError unknown = caught([&] { c.check_unknown(); });
  CHECK(unknown.key() == "sim.seed");
  CHECK(unknown.line() == std::optional<std::int64_t>(5));
  CHECK(unknown.detail() == "unknown key 'sim.seed' (valid: name)");  // sim.name was asked for above
  // Syntax errors: file and line, the parser's description as the detail.
  const InputError syntax = caught([] { (void)Config::from_string("a = \n", "bad.toml"); });
  CHECK(syntax.file() == "bad.toml");
  CHECK(syntax.line() == std::optional<std::int64_t>(1));
  CHECK(std::string(syntax.what()).rfind("bad.toml:1:", 0) == 0);
  // --set: the key.
  Config d = Config::from_string("", "doc.toml");
  const InputError set = caught([&] { d.set("engine.max_num_seqs", "1\nx = 2"); });
  CHECK(set.key() == "engine.max_num_seqs");
  CHECK(std::string(set.what()).rfind("--set engine.max_num_seqs: value '1\\nx = 2' is more than one", 0) == 0);
}

TEST_CASE("a file that cannot be opened throws InputFileError with its path", "[scenario-root]") {
  const auto dir = test::temp_dir("root-open");
  const std::string missing = (dir / "none.csv").string();
  try {
    check_input_file(missing, "trace");
    FAIL("no error");
  } catch (const InputFileError& e) {
    CHECK(e.file() == missing);
    CHECK(std::string(e.what()) == missing + ": cannot open trace: not found");
    CHECK(e.detail() == "cannot open trace: not found");
  }
  // The scenario key that names the file is placed in front (sim/workload: from the fields, not the text).
  const std::string s = test::write_file(dir / "s.toml", test::base_scenario_text() +
                                                             "[workload]\nnum_requests = 1\n[workload.arrival]\n"
                                                             "impl = \"trace\"\npath = \"none.csv\"\n");
  const std::string msg = test::input_error([&] { const ScenarioLoader l(s, {}); });
  CHECK(msg == s + ":9: workload.arrival.path: " + missing + ": cannot open trace file: not found");
}

TEST_CASE("step-model errors are placed at the parallel key in the scenario, from the error's key", "[scenario-root]") {
  const auto dir = test::temp_dir("root-tp");
  // Llama-3-8B has 32 heads: tensor_parallel_size 3 does not divide them.
  const std::string s = test::write_file(dir / "s.toml", test::base_scenario_text() +
                                                             "[parallel]\ntensor_parallel_size = 3\n"
                                                             "topology = \"dgx-h100\"\n" + kWorkload);
  const InputError e = caught([&] { const ScenarioLoader l(s, {}); });
  CHECK(e.file() == s);
  CHECK(e.line() == std::optional<std::int64_t>(6));
  CHECK(e.key() == "parallel.tensor_parallel_size");
  CHECK(std::string(e.what()) == s + ":6: parallel.tensor_parallel_size: 32 attention heads of llama-3-8b do not "
                                     "divide by tensor_parallel_size 3");
}

TEST_CASE("an unknown topology name is placed at parallel.topology with the catalogue's names", "[scenario-root]") {
  const auto dir = test::temp_dir("root-topo");
  const std::string s = test::write_file(dir / "s.toml", test::base_scenario_text() +
                                                             "[parallel]\ntopology = \"no-such-box\"\n" + kWorkload);
  const InputError e = caught([&] { const ScenarioLoader l(s, {}); });
  CHECK(e.key() == "parallel.topology");
  CHECK(e.line() == std::optional<std::int64_t>(6));
  CHECK_THAT(e.what(), Catch::Contains("unknown topology 'no-such-box'") && Catch::Contains("dgx-h100"));
  // A path that does not exist keeps its own message.
  const std::string p = test::write_file(dir / "p.toml", test::base_scenario_text() +
                                                             "[parallel]\ntopology = \"sub/none.toml\"\n" + kWorkload);
  CHECK_THAT(test::input_error([&] { const ScenarioLoader l(p, {}); }),
             Catch::Contains("sub/none.toml: topology file not found"));
}

TEST_CASE("catalogs: the same path gives the same object, read once", "[scenario-root]") {
  Catalogs cats;
  const auto dir = test::temp_dir("root-cat");
  const std::string gpus = test::write_file(dir / "gpus.toml",
                                            "[card]\nbf16_tflops = 100.0\nmemory = \"80GB\"\n"
                                            "memory_bandwidth = \"2TB/s\"\ngemm_efficiency = 0.8\n"
                                            "memory_efficiency = 0.9\n");
  const auto a = cats.gpu_catalog(gpus);
  const auto b = cats.gpu_catalog(gpus);
  CHECK(a == b);
  CHECK(cats.reads() == 1);
  CHECK(a->gpu("card", "test").bf16_peak.v == 100e12);
  const std::string model = test::scenario_path("models/llama-3-8b.json");
  CHECK(cats.model(model, {}) == cats.model(model, {}));
  CHECK(cats.model(model, {"rope_scaling"}) != cats.model(model, {}));  // other ignored keys: another entry
  const std::string topo = test::scenario_path("topologies/dgx-h100.toml");
  const std::string topo_dir = test::scenario_path("topologies");
  CHECK(cats.topology(topo, topo_dir) == cats.topology(topo, topo_dir));
  CHECK(cats.reads() == 4);

  // A rewritten file (another size) is read again.
  test::write_file(dir / "gpus.toml", "[card]\nbf16_tflops = 200.0\nmemory = \"80GB\"\n"
                                      "memory_bandwidth = \"2TB/s\"\ngemm_efficiency = 0.8\n"
                                      "memory_efficiency = 0.95\n");
  const auto c = cats.gpu_catalog(gpus);
  CHECK(c != a);
  CHECK(c->gpu("card", "test").bf16_peak.v == 200e12);
  CHECK(cats.reads() == 5);

  // A file that fails is not cached: each lookup throws its error.
  const std::string bad = test::write_file(dir / "bad.toml", "card = [\n");
  CHECK_THROWS_AS(cats.gpu_catalog(bad), InputError);
  CHECK_THROWS_AS(cats.gpu_catalog(bad), InputError);
  CHECK(cats.reads() == 7);
}

TEST_CASE("catalogs: threads asking for one file at once share one read", "[scenario-root]") {
  Catalogs cats;
  const std::string model = test::scenario_path("models/llama-3-70b.json");
  std::vector<std::shared_ptr<const ModelArch>> got(8);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&cats, &got, &model, i] { got[i] = cats.model(model, {}); });
  }
  for (auto& t : threads) t.join();
  for (const auto& g : got) CHECK(g == got.front());
  CHECK(cats.reads() == 1);
}

TEST_CASE("a second loader of a scenario reads no catalog file again", "[scenario-root]") {
  const std::string s = test::scenario_path("llama70b-tp8-dgx-h100.toml");
  const ScenarioLoader first(s, {});
  const std::int64_t after_first = catalogs().reads();
  const ScenarioLoader second(s, {});
  CHECK(catalogs().reads() == after_first);
  // The same results: the catalogs' objects, not copies of other files.
  CHECK(second.scenario().gpu.name == first.scenario().gpu.name);
  CHECK(second.scenario().arch.name == "llama-3-70b");
  CHECK(second.scenario().replica.num_kv_blocks == first.scenario().replica.num_kv_blocks);
}
