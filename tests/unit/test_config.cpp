#include <catch2/catch.hpp>

#include "models/common/config.h"
#include "models/common/error.h"
#include "models/common/quantity_parse.h"

using namespace servesim;

TEST_CASE("quantities parse with their units", "[config]") {
  CHECK(parse_bytes("16GiB").v == 16.0 * kGiB);
  CHECK(parse_bytes("80GB").v == 80e9);
  CHECK(parse_bytes("512").v == 512.0);
  CHECK(parse_bandwidth("450GB/s").v == 450e9);
  CHECK(parse_bandwidth("400Gb/s").v == 50e9);
  CHECK(parse_bandwidth("400Gbps").v == 50e9);
  CHECK(parse_duration("5us").v == Approx(5e-6));
  CHECK(parse_duration("1.5ms").v == Approx(1.5e-3));
  CHECK_THROWS_AS(parse_bandwidth("5ms"), InputError);
  CHECK_THROWS_AS(parse_bytes("GiB"), InputError);
  CHECK_THROWS_AS(parse_duration("-1s"), InputError);
}

TEST_CASE("unknown keys are reported with file:line and the valid keys", "[config]") {
  const Config c = Config::from_string("[engine]\nmax_num_seqs = 4\nmax_num_seq = 5\n", "s.toml");
  const Config e = c.table("engine");
  CHECK(e.integer("max_num_seqs") == 4);
  try {
    c.check_unknown();
    FAIL("no error");
  } catch (const InputError& err) {
    const std::string m = err.what();
    CHECK(m.find("s.toml:3") != std::string::npos);
    CHECK(m.find("engine.max_num_seq'") != std::string::npos);
    CHECK(m.find("valid: max_num_seqs") != std::string::npos);
  }
}

TEST_CASE("type and range errors name file:line and the key", "[config]") {
  const Config c = Config::from_string("[w]\nrate = -1.0\nname = 3\nbw = \"5ms\"\n", "x.toml");
  const Config w = c.table("w");
  CHECK_THROWS_WITH(w.positive("rate"), Catch::Contains("x.toml:2") && Catch::Contains("w.rate"));
  CHECK_THROWS_WITH(w.str("name"), Catch::Contains("x.toml:3") && Catch::Contains("expected a string"));
  CHECK_THROWS_WITH(w.bandwidth("bw"), Catch::Contains("x.toml:4") && Catch::Contains("not a bandwidth"));
  CHECK_THROWS_WITH(w.num("missing"), Catch::Contains("missing required key 'w.missing'"));
}

TEST_CASE("a missing required key names a misspelt key of its table", "[config]") {
  const Config c = Config::from_string("[slo]\nttft_p99_ms = 2000\ntpot_p99 = 100\n", "p.toml");
  const Config slo = c.table("slo");
  CHECK(slo.positive("ttft_p99_ms") == 2000.0);
  CHECK_THROWS_WITH(slo.positive("tpot_p99_ms"),
                    Catch::Contains("missing required key 'slo.tpot_p99_ms' (the table has 'tpot_p99', which is not "
                                    "a known key)"));
  // A known key is never offered, nor a key spelt unlike the missing one.
  const Config d = Config::from_string("[w]\nrate = 1.0\nother = 2\n", "q.toml").table("w");
  CHECK(d.positive("rate") == 1.0);
  CHECK_THROWS_WITH(d.positive("rates"), Catch::Contains("missing required key 'w.rates'") &&
                                             !Catch::Contains("the table has"));
}

TEST_CASE("malformed TOML names file:line:col", "[config]") {
  CHECK_THROWS_WITH(Config::from_string("[a]\nx = = 1\n", "bad.toml"), Catch::StartsWith("bad.toml:2:"));
}

TEST_CASE("set overrides (--set) replace nodes, including inline tables", "[config]") {
  Config c = Config::from_string("[w]\nrate = 1.0\n[w.p]\nimpl = \"fixed\"\nvalue = 3\n", "s.toml");
  c.set("w.rate", "2.5");
  c.set("w.p", "{impl=\"uniform\", min=1, max=9}");
  c.set("new.key", "\"v\"");
  const Config w = c.table("w");
  CHECK(w.num("rate") == 2.5);
  CHECK(w.table("p").str("impl") == "uniform");
  CHECK(w.table("p").integer("max") == 9);
  CHECK(c.table("new").str("key") == "v");
  CHECK_THROWS_WITH(c.set("w.rate", "not toml"), Catch::Contains("--set w.rate"));
  // A value set on the command line is named as such in errors.
  c.set("w.rate", "-3.0");
  CHECK_THROWS_WITH(c.table("w").positive("rate"), Catch::Contains("--set w.rate"));
}
