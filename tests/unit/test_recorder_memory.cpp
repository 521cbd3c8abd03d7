// The recorder's compact storage: packed request records and gap runs round-trip exactly (values at the edges of
// int64, chunk boundaries, runs too long or too wide to pack), and the statistics over them are those of the
// plain vectors, bit for bit.
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "sim/metrics/recorder.h"
#include "sim/metrics/summary.h"

using namespace servesim;

namespace {

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

// A plausible finished request: arrival ~ 14 req/s, queueing, prefill and decode of a few seconds.
RequestRecord typical(std::uint64_t id, std::mt19937_64& rng) {
  std::uniform_int_distribution<std::int64_t> ms(0, 3000);
  RequestRecord r;
  r.id = id;
  r.replica = static_cast<std::int32_t>(id % 3);
  r.preemptions = static_cast<std::int32_t>(rng() % 4);
  r.prompt_tokens = 1 + static_cast<std::int64_t>(rng() % 8000);
  r.output_tokens = 1 + static_cast<std::int64_t>(rng() % 1000);
  r.arrival = Ns{static_cast<std::int64_t>(id) * 71'428'571 + ms(rng)};
  r.ready = r.arrival + Ns{ms(rng)};
  r.first_scheduled = r.ready + Ns{ms(rng) * 1'000'000};
  r.first_token = r.first_scheduled + Ns{ms(rng) * 1'000};
  r.finish = r.first_token + Ns{ms(rng) * 3'000'000};
  return r;
}

RequestRecord filled(std::int64_t v) {
  RequestRecord r;
  r.id = static_cast<std::uint64_t>(v);
  r.replica = static_cast<std::int32_t>(v);
  r.preemptions = static_cast<std::int32_t>(v);
  r.prompt_tokens = v;
  r.output_tokens = v;
  r.arrival = r.ready = r.first_scheduled = r.first_token = r.finish = Ns{v};
  r.prefill_replica = static_cast<std::int32_t>(v);
  r.decode_wait = r.kv_transfer = Ns{v};
  return r;
}

// Every record of `in` read back by index and by iteration.
void check_round_trip(const std::vector<RequestRecord>& in) {
  RecordStore store;
  for (const auto& r : in) store.push_back(r);
  REQUIRE(store.size() == in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    INFO("record " << i);
    REQUIRE(store[i] == in[i]);
  }
  std::size_t i = 0;
  for (const RequestRecord r : store) REQUIRE(r == in[i++]);
  CHECK(i == in.size());
  i = 0;
  store.for_each([&](const RequestRecord& r) { REQUIRE(r == in[i++]); });
  CHECK(i == in.size());
  // Only some groups of fields: those come back exactly.
  i = 0;
  store.for_each(
      [&](const RequestRecord& r) {
        const RequestRecord& want = in[i++];
        REQUIRE(r.preemptions == want.preemptions);
        REQUIRE(r.prompt_tokens == want.prompt_tokens);
        REQUIRE(r.output_tokens == want.output_tokens);
        REQUIRE(r.cached_tokens == want.cached_tokens);
        REQUIRE(r.arrival == want.arrival);
        REQUIRE(r.ready == want.ready);
        REQUIRE(r.first_scheduled == want.first_scheduled);
        REQUIRE(r.first_token == want.first_token);
        REQUIRE(r.finish == want.finish);
      },
      RecordStore::kCounts | RecordStore::kTimes);
  CHECK(i == in.size());
  i = 0;
  store.for_each(
      [&](const RequestRecord& r) {
        const RequestRecord& want = in[i++];
        REQUIRE(r.id == want.id);
        REQUIRE(r.replica == want.replica);
        REQUIRE(r.prefill_replica == want.prefill_replica);
      },
      RecordStore::kIds);
  CHECK(i == in.size());
}

}  // namespace

TEST_CASE("packed request records round-trip exactly at the edges of int64 and across chunks", "[recorder-memory]") {
  const std::size_t chunk = RecordStore::kChunk;
  SECTION("extremes in one chunk take the full 64 bits and come back unchanged") {
    std::vector<RequestRecord> in;
    for (const std::int64_t v : {kMin, kMax, std::int64_t{0}, std::int64_t{-1}, std::int64_t{1}, kNever.v,
                                 kMaxSimNs, -kMaxSimNs}) {
      in.push_back(filled(v));
    }
    // Differences that wrap modulo 2^64: finish far before arrival, first token at kNever after kMin.
    RequestRecord w = filled(0);
    w.arrival = Ns{kMax};
    w.ready = Ns{kMin};
    w.first_scheduled = Ns{kMax};
    w.first_token = Ns{kMin};
    w.finish = Ns{0};
    w.id = std::numeric_limits<std::uint64_t>::max();
    w.replica = std::numeric_limits<std::int32_t>::min();
    w.preemptions = std::numeric_limits<std::int32_t>::max();
    in.push_back(w);
    while (in.size() < 2 * chunk + 3) {
      const RequestRecord again = in[in.size() % 9];
      in.push_back(again);
    }  // two full (packed) chunks and a tail
    check_round_trip(in);
  }
  SECTION("typical records at every chunk boundary") {
    std::mt19937_64 rng(7);
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, chunk - 1, chunk, chunk + 1, 3 * chunk}) {
      INFO("n = " << n);
      std::vector<RequestRecord> in;
      for (std::size_t i = 0; i < n; ++i) in.push_back(typical(i, rng));
      check_round_trip(in);
    }
  }
  SECTION("every field its own value, so that no two fields can be confused") {
    std::mt19937_64 rng(5);
    std::vector<RequestRecord> in;
    for (std::size_t i = 0; i < 2 * chunk + 70; ++i) {
      RequestRecord r = typical(i, rng);
      auto small = [&rng](std::int64_t k) { return Ns{k * 1'000'000 + static_cast<std::int64_t>(rng() % 1000)}; };
      r.prefill = small(1);
      r.prefill_preempted = small(2);
      r.decode = small(3);
      r.decode_preempted = small(4);
      r.step_compute = small(5);
      r.step_memory = small(6);
      r.step_communication = small(7);
      r.step_overhead = small(8);
      r.decode_wait = small(9);
      r.kv_transfer = small(10);
      r.prefill_replica = static_cast<std::int32_t>(100 + i % 5);
      r.cached_tokens = static_cast<std::int64_t>(rng() % 50) - 1;
      in.push_back(r);
    }
    check_round_trip(in);
  }
  SECTION("a chunk of equal records needs no bits; a typical one about 20 bytes a record") {
    RecordStore same, varied;
    std::mt19937_64 rng(11);
    for (std::size_t i = 0; i < 8 * chunk; ++i) {
      same.push_back(filled(12345));
      varied.push_back(typical(i, rng));
    }
    // Beyond the unpacked tail's capacity (one chunk of RequestRecord): chunk headers only, or the packed words.
    const std::size_t tail = chunk * sizeof(RequestRecord);
    // A chunk's header: base (8 B), width (1 B) and bit offset (2 B) of each of the 21 fields, and its words.
    CHECK(same.heap_bytes() < tail + 8 * (21 * 11 + 64));
    CHECK(same[5 * chunk + 17] == filled(12345));
    CHECK(varied.heap_bytes() - tail < 8 * chunk * 28);
    CHECK(varied.heap_bytes() - tail > 8 * chunk * 12);
  }
}

TEST_CASE("gap runs keep every run exactly, packed or whole, and sort them by (gap, count)", "[recorder-memory]") {
  GapRuns runs;
  std::vector<GapRuns::Run> expected;
  auto add_run = [&](std::int64_t gap, std::int64_t n) {
    for (std::int64_t k = 0; k < n; ++k) runs.add(gap);
    expected.emplace_back(gap, n);
  };
  add_run(10'000'000, 3);
  add_run(0, 1);                             // the smallest packed gap
  add_run((std::int64_t{1} << 32) - 1, 2);   // the largest packed gap
  add_run(std::int64_t{1} << 32, 1);         // one more: kept whole
  add_run(-5, 2);                            // a negative gap: kept whole, not wrapped
  add_run(kMax, 1);
  add_run(7, 4095);                          // the longest packed run
  add_run(8, 4096);                          // one longer: kept whole
  add_run(10'000'000, 3);                    // the same run again: a second run, not merged with the first
  add_run(12'345'678, 1);
  add_run(10'000'000, 5);                    // the open (last) run
  CHECK(runs.size() == expected.size());

  std::vector<GapRuns::Run> stored(runs.begin(), runs.end());
  std::sort(stored.begin(), stored.end());
  std::sort(expected.begin(), expected.end());
  CHECK(stored == expected);

  std::vector<GapRuns::Run> sorted;
  runs.for_each_sorted([&](std::int64_t g, std::int64_t n) {
    sorted.emplace_back(g, n);
    return true;
  });
  CHECK(sorted == expected);
  // A second pass (already sorted) and an early stop.
  std::size_t seen = 0;
  runs.for_each_sorted([&](std::int64_t, std::int64_t) { return ++seen < 3; });
  CHECK(seen == 3);
  // Adding after a sorted pass re-sorts.
  runs.add(1);
  runs.add(2);
  expected.emplace_back(1, 1);
  expected.emplace_back(2, 1);
  std::sort(expected.begin(), expected.end());
  sorted.clear();
  runs.for_each_sorted([&](std::int64_t g, std::int64_t n) {
    sorted.emplace_back(g, n);
    return true;
  });
  CHECK(sorted == expected);
}

TEST_CASE("ITL statistics from the recorder's gap runs equal stats_of_runs over the same runs, bit for bit",
          "[recorder-memory]") {
  std::mt19937_64 rng(3);
  Recorder rec;
  std::vector<std::pair<double, std::int64_t>> plain;
  std::int64_t last = -1;
  for (int k = 0; k < 50'000; ++k) {
    std::int64_t gap = 5'000'000 + static_cast<std::int64_t>(rng() % 40'000'000);
    if (k % 97 == 0) gap = std::int64_t{6} << 30;  // a few gaps too long to pack
    if (gap == last) continue;
    const auto n = static_cast<std::int64_t>(1 + rng() % (k % 1000 == 0 ? 9000 : 256));
    for (std::int64_t i = 0; i < n; ++i) rec.inter_token(Ns{gap});
    plain.emplace_back(double(gap) * 1e-6, n);
    last = gap;
  }
  const Stats want = stats_of_runs(plain);
  const auto s = summarize(rec, RunFacts{});
  CHECK(s["mean_itl_ms"].get<double>() == want.mean);
  CHECK(s["median_itl_ms"].get<double>() == want.median);
  CHECK(s["std_itl_ms"].get<double>() == want.std);
  CHECK(s["p90_itl_ms"].get<double>() == want.p90);
  CHECK(s["p99_itl_ms"].get<double>() == want.p99);
}
