// vLLM v1's hybrid KV cache manager for models mixing full-attention and sliding-window layers (gpt-oss): the KV
// cache groups and their page size (KvGroups), per-group blocks of a sequence, the pool's size, and a run of
// gpt-oss-20b with the manager on and off (engine.disable_hybrid_kv_cache_manager). Also one data-parallel rank's
// pool bounding one sequence.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "helpers.h"
#include "models/arch/model_arch.h"
#include "sim/cli/run.h"
#include "sim/engine/kv_cache.h"
#include "sim/scenario/scenario.h"

using namespace servesim;

namespace {

ModelArch load(const std::string& name) {
  return ModelArch::from_hf_config(test::scenario_path("models/" + name + ".json"));
}

// A model of `layers` layers, window 128, whose layers listed in `sliding` slide.
ModelArch mixed(std::int64_t layers, const std::vector<std::int64_t>& sliding) {
  ModelArch a = load("gpt-oss-20b");
  a.num_layers = layers;
  a.layer_sliding.assign(static_cast<std::size_t>(layers), false);
  for (const std::int64_t i : sliding) a.layer_sliding[static_cast<std::size_t>(i)] = true;
  return a;
}

RunOutput run(const std::string& scenario, std::vector<std::pair<std::string, std::string>> sets) {
  ScenarioOptions o;
  o.sets = std::move(sets);
  return run_scenario(ScenarioLoader(scenario, o), false);
}

}  // namespace

TEST_CASE("KV cache groups: gpt-oss gets one full and one sliding group of 12 layers", "[hybrid-kv]") {
  const ModelArch oss = load("gpt-oss-20b");
  REQUIRE(oss.num_layers == 24);
  REQUIRE(oss.sliding_layers() == 12);
  const KvGroups on = KvGroups::of(oss, 1, true);
  CHECK(on.window == 128);
  CHECK(on.sliding_groups == 1);
  CHECK(on.groups() == 2);
  CHECK(on.page_layers(oss, 1, 0) == 12);
  // Two pipeline stages of 12 alternating layers: 6 full, 6 sliding each.
  const KvGroups pp2 = KvGroups::of(oss, 2, true);
  CHECK(pp2.sliding_groups == 1);
  CHECK(pp2.page_layers(oss, 2, 0) == 6);
  CHECK(pp2.page_layers(oss, 2, 1) == 6);
  // The manager off: held as full attention (vLLM's unify_hybrid_kv_cache_specs), every layer in a page.
  const KvGroups off = KvGroups::of(oss, 1, false);
  CHECK(off.window == 0);
  CHECK_FALSE(off.hybrid());
  CHECK(off.page_layers(oss, 1, 0) == 24);

  // Gemma-3-like: 2 full, 10 sliding -> groups of 2 layers, ceil(10 / 2) = 5 sliding groups.
  std::vector<std::int64_t> five_to_one;
  for (std::int64_t i = 0; i < 12; ++i) {
    if (i % 6 != 5) five_to_one.push_back(i);
  }
  const KvGroups g3 = KvGroups::of(mixed(12, five_to_one), 1, true);
  CHECK(g3.sliding_groups == 5);
  CHECK(g3.page_layers(mixed(12, five_to_one), 1, 0) == 2);
  // 3 full, 4 sliding: padded to ceil(4 / 3) = 2 sliding groups of 3.
  CHECK(KvGroups::of(mixed(7, {0, 2, 4, 6}), 1, true).sliding_groups == 2);
  // More full than sliding layers: 5 full, 1 sliding are five full-attention groups of one layer, which servesim
  // holds as full attention.
  CHECK_FALSE(KvGroups::of(mixed(6, {5}), 1, true).hybrid());
  // Nearly even counts take the larger as the group size (13 full, 12 sliding: two groups of 13, as vLLM pads
  // gpt-oss-20b with an EAGLE layer), one full-attention group.
  std::vector<std::int64_t> twelve;
  for (std::int64_t i = 0; i < 24; i += 2) twelve.push_back(i);
  const KvGroups eagle = KvGroups::of(mixed(25, twelve), 1, true);
  CHECK(eagle.sliding_groups == 1);
  CHECK(eagle.page_layers(mixed(25, twelve), 1, 0) == 13);
  // A stage with sliding layers only (PP 2 over 4 full then 4 sliding layers): the stages' groups differ.
  CHECK_FALSE(KvGroups::of(mixed(8, {4, 5, 6, 7}), 2, true).hybrid());
  CHECK(KvGroups::of(mixed(8, {4, 5, 6, 7}), 1, true).sliding_groups == 1);
  // Every layer sliding: one group that slides, as before.
  const KvGroups all = KvGroups::of(mixed(4, {0, 1, 2, 3}), 1, true);
  CHECK(all.window == 128);
  CHECK_FALSE(all.hybrid());
}

TEST_CASE("hybrid blocks: the full group holds every block, the sliding group its window's", "[hybrid-kv]") {
  // 16-token blocks, window 128, one sliding group, 8,192-token steps; 1,000 usable blocks.
  KvCacheManager kv(1001, 16, KvGroups{128, 1}, 8192);
  Sequence s;
  // A 1,000-token prompt in one step: nothing computed yet, so both groups take ceil(1000 / 16) = 63 blocks.
  REQUIRE(kv.allocate(s, 1000));
  CHECK(s.blocks == 63);
  CHECK(s.swa_blocks == 63);
  CHECK(kv.held(s) == 126);
  CHECK(kv.free_blocks() == 1000 - 126);
  s.computed = 1000;
  // The first decode: blocks [0, (1000 - 128 + 1) / 16 = 54) of the sliding group are freed; no new block.
  REQUIRE(kv.allocate(s, 1001));
  CHECK(s.swa_null == 54);
  CHECK(s.swa_blocks == 9);
  CHECK(s.blocks == 63);
  CHECK(kv.free_blocks() == 1000 - 72);
  // Decode to 3,000 tokens: the sliding group never holds more than ceil(128 / 16) + 1 = 9 blocks.
  std::int64_t most = 0;
  for (std::int64_t t = 1001; t < 3000; ++t) {
    s.computed = t;
    REQUIRE(kv.allocate(s, t + 1));
    most = std::max(most, s.swa_blocks);
    CHECK(s.blocks == kv.blocks_for(t + 1));
    CHECK(s.swa_blocks + s.swa_null == kv.blocks_for(t + 1));
    CHECK(kv.free_blocks() + kv.held(s) == kv.num_blocks());
  }
  CHECK(most == 9);
  // peak_blocks: every full block plus min(all, ceil((128 - 1 + 8192) / 16) + 1 = 521) sliding ones.
  CHECK(kv.peak_blocks(3000) == 188 + 188);
  CHECK(kv.peak_blocks(20000) == 1250 + 521);
  CHECK_FALSE(kv.can_ever_fit(20000));
  CHECK(kv.can_ever_fit(7000));  // 438 + 438 <= 1000
  kv.release(s);
  CHECK(kv.free_blocks() == kv.num_blocks());
  CHECK(s.swa_blocks == 0);
  CHECK(s.swa_null == 0);

  // A sequence already computed but holding nothing (a decode replica's copy of a prefilled one) takes only the
  // window's sliding blocks: (1000 - 127) / 16 = 54 skipped, 63 - 54 held.
  Sequence copy;
  copy.computed = 1000;
  REQUIRE(kv.allocate(copy, 1001));
  CHECK(copy.blocks == 63);
  CHECK(copy.swa_null == 54);
  CHECK(copy.swa_blocks == 9);
  kv.release(copy);
  CHECK(kv.free_blocks() == kv.num_blocks());

  // A request that does not fit leaves the pool as it was (all groups' blocks or none).
  KvCacheManager small(101, 16, KvGroups{128, 1}, 8192);
  Sequence a;
  REQUIRE(small.allocate(a, 400));  // 25 + 25
  Sequence b;
  CHECK_FALSE(small.allocate(b, 16 * 26));  // 26 + 26 > 50 free
  CHECK(b.blocks == 0);
  CHECK(b.swa_blocks == 0);
  CHECK(small.free_blocks() == 50);
  REQUIRE(small.allocate(b, 16 * 25));
  CHECK(small.free_blocks() == 0);
}

TEST_CASE("hybrid prefix caching: the full group's hit, the sliding groups' window after it", "[hybrid-kv]") {
  KvCacheManager kv(1001, 16, KvGroups{128, 1}, 8192, true);
  const auto content = std::make_shared<Content>(std::initializer_list<ContentSpan>{{5, 640}});
  Sequence first;
  first.req = Request{1, Ns{0}, 700, 10, content};
  REQUIRE(kv.allocate(first, 700));  // 44 + 44 blocks
  first.computed = 700;
  kv.release(first);
  CHECK(kv.free_blocks() == kv.num_blocks());
  CHECK(kv.cached_blocks() == 43);  // its full blocks: 40 of shared content, 3 with its own tokens
  Sequence second;
  second.req = Request{2, Ns{0}, 900, 10, content};
  const std::int64_t hit = kv.lookup(second);
  CHECK(hit == 640);
  REQUIRE(kv.allocate_cached(second, hit, 900));
  // Full group: 40 hit blocks + 17 new (ceil(900 / 16) = 57). Sliding group: from block (640 - 127) / 16 = 32 on.
  CHECK(second.blocks == 57);
  CHECK(second.swa_null == 32);
  CHECK(second.swa_blocks == 57 - 32);
  CHECK(kv.free_blocks() + kv.held(second) == kv.num_blocks());
  kv.release(second);
  CHECK(kv.free_blocks() == kv.num_blocks());
}

TEST_CASE("hybrid pool size: a block spans one group's layers, so gpt-oss gets twice the blocks", "[hybrid-kv]") {
  KvCacheSizing full;
  full.usable = Bytes{1000.0 * 1024 * 24};
  full.stages.push_back({Bytes{0.0}, Bytes{24.0 * 64}});  // 24 layers x 64 B per token
  KvCacheSizing hybrid = full;
  hybrid.stages[0].page_layers = 12;
  hybrid.stages[0].layers = 24;
  // 24,576,000 B / (16 x 1,536 B) = 1,000 blocks; a hybrid block is 16 tokens x 12 layers x 64 B: 2,000.
  CHECK(full.num_blocks() == 1000);
  CHECK(hybrid.num_blocks() == 2000);
}

TEST_CASE("gpt-oss-20b: the hybrid manager doubles the KV blocks and cuts preemptions", "[hybrid-kv]") {
  // A tight cache (gpu_memory_utilization 0.25 of an H100's 80 GB) under a load that fills it.
  const std::string scenario = test::scenario_path("gpt-oss-120b-h100.toml");
  const std::vector<std::pair<std::string, std::string>> base = {
      {"model.config", "\"gpt-oss-20b\""},        {"engine.gpu_memory_utilization", "0.22"},
      {"engine.max_model_len", "16384"},
      {"workload.num_requests", "600"},           {"workload.arrival.rate", "40"},
      {"workload.prompt_tokens.mean", "3000"},     {"workload.prompt_tokens.max", "8000"},
      {"workload.output_tokens.mean", "600"},      {"workload.output_tokens.max", "2000"}};
  auto with = [&](const char* off) {
    auto sets = base;
    sets.emplace_back("engine.disable_hybrid_kv_cache_manager", off);
    return run(scenario, sets);
  };
  const RunOutput on = with("false");
  const RunOutput off = with("true");
  const auto& a = on.summary["servesim"];
  const auto& b = off.summary["servesim"];
  const auto blocks_on = a["kv_blocks_per_replica"].get<std::int64_t>();
  const auto blocks_off = b["kv_blocks_per_replica"].get<std::int64_t>();
  INFO("blocks " << blocks_on << " vs " << blocks_off << "; preemptions " << a["preemptions"] << " vs "
                 << b["preemptions"]);
  // floor(free / (block / 2)) against floor(free / block).
  CHECK((blocks_on == 2 * blocks_off || blocks_on == 2 * blocks_off + 1));
  CHECK(a["kv_cache_groups"].get<std::int64_t>() == 2);
  CHECK_FALSE(b.contains("kv_cache_groups"));
  CHECK(a["kv_capacity_tokens_per_replica"].get<std::int64_t>() == blocks_on / 2 * 16);
  CHECK(b["kv_capacity_tokens_per_replica"].get<std::int64_t>() == blocks_off * 16);
  CHECK(b["preemptions"].get<std::int64_t>() > 0);
  CHECK(a["preemptions"].get<std::int64_t>() < b["preemptions"].get<std::int64_t>());
  CHECK(on.summary["mean_ttft_ms"].get<double>() < off.summary["mean_ttft_ms"].get<double>());
}

TEST_CASE("data-parallel attention: one rank's pool bounds one sequence", "[hybrid-kv]") {
  KvCacheManager kv(1001, 16);
  CHECK(kv.can_ever_fit(16000));
  kv.limit_sequence_blocks(500);
  CHECK(kv.can_ever_fit(8000));
  CHECK_FALSE(kv.can_ever_fit(8001));
}
