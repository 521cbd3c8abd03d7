#include <catch2/catch.hpp>

#include "helpers.h"
#include "models/arch/model_arch.h"
#include "models/common/error.h"
#include "models/cost/roofline.h"
#include "models/cost/step_model.h"
#include "models/cost/step_timer.h"

using namespace servesim;

namespace {

ModelArch llama3_8b() { return ModelArch::from_hf_config(test::scenario_path("models/llama-3-8b.json")); }

GpuSpec simple_gpu() { return test::simple_gpu(); }  // 500 TFLOP/s, 2 TB/s achieved, 1 us launch

}  // namespace

TEST_CASE("Llama-3-8B architecture from config.json", "[arch]") {
  const ModelArch m = llama3_8b();
  CHECK(m.hidden_size == 4096);
  CHECK(m.head_dim == 128);
  CHECK(m.num_kv_heads == 8);
  // 32 layers x 218,112,000 + 2 x 128256 x 4096 (embedding, LM head) + 4096 (final norm)
  CHECK(m.layer_params() == 218112000.0);
  CHECK(m.params() == 8030261248.0);
  // K and V, 32 layers, 8 heads x 128, bf16
  CHECK(m.kv_bytes_per_token().v == 131072.0);
}

TEST_CASE("every shipped model config loads", "[arch]") {
  for (const char* name : {"llama-3-8b", "llama-3-70b", "llama-2-7b", "llama-2-70b", "qwen2.5-7b", "mistral-7b"}) {
    const ModelArch m = ModelArch::from_hf_config(test::scenario_path(std::string("models/") + name + ".json"));
    CHECK(m.params() > 6e9);
  }
  const ModelArch l2 = ModelArch::from_hf_config(test::scenario_path("models/llama-2-7b.json"));
  CHECK(l2.params() == Approx(6.738e9).epsilon(0.001));
}

TEST_CASE("roofline GEMM time is max(compute, memory) + launch, exactly", "[cost]") {
  const RooflinePredictor p(simple_gpu());
  // Memory-bound: M=1, N=K=4096: bytes = (4096 + 4096^2 + 4096) x 2 = 33570816; / 2e12 = 16.785408 us.
  const OpCost small = p.gemm(GemmShape{"o", 1, 4096, 4096, 2.0});
  CHECK(small.bound == Bound::memory);
  CHECK(small.time.v == Approx(33570816.0 / 2e12 + 1e-6).epsilon(1e-12));
  // Compute-bound: M=8192: flops = 2 x 8192 x 4096 x 4096 = 274877906944; / 5e14 = 549.755813888 us.
  const OpCost big = p.gemm(GemmShape{"o", 8192, 4096, 4096, 2.0});
  CHECK(big.bound == Bound::compute);
  CHECK(big.time.v == Approx(274877906944.0 / 5e14 + 1e-6).epsilon(1e-12));
}

TEST_CASE("attention FLOPs and bytes", "[cost]") {
  const AttentionShape a{32, 8, 128, 2.0};
  const std::vector<PrefillChunk> one{{1024, 0}};
  // 4 x 32 heads x 128 x 1024 x (0 + 1025/2)
  CHECK(prefill_attention_flops(a, one).v == 4.0 * 32 * 128 * 1024 * 512.5);
  const std::vector<PrefillChunk> chunked{{512, 1024}};
  CHECK(prefill_attention_flops(a, chunked).v == 4.0 * 32 * 128 * 512 * (1024 + 256.5));
  // Decode: 10 sequences with 1000 cached tokens in all: K+V = 1000 x 8 x 128 x 2 x 2 bytes; Q+O = 10 x 4096 x 2 x 2
  CHECK(decode_attention_bytes(a, 10, 1000).v == 1000.0 * 8 * 128 * 2 * 2 + 10.0 * 4096 * 2 * 2);
}

TEST_CASE("step time = gpu ops + overhead, decode is memory-bound, large prefill compute-bound", "[cost]") {
  auto pred = std::make_shared<const RooflinePredictor>(simple_gpu());
  const EngineOverhead ovh{Seconds{1e-4}, Seconds{1e-5}, Seconds{0.0}};
  const StepModel m(llama3_8b(), simple_gpu(), ParallelConfig{}, pred, ovh, nullptr);
  BatchShape decode;
  decode.num_decodes = 4;
  decode.decode_context_tokens = 4 * 513;
  decode.num_sampled = 4;
  const StepCost c = m.breakdown(decode);
  CHECK(c.overhead.v == Approx(1e-4 + 4e-5));
  Seconds sum{0.0};
  for (const auto& o : c.ops) sum += o.time;
  CHECK(sum.v == Approx(c.gpu.v).epsilon(1e-12));
  CHECK(m.step_time(decode).v == Approx(c.total().v).epsilon(1e-12));
  for (const auto& o : c.ops) {
    if (o.name == "gate_up") CHECK(o.bound == Bound::memory);
  }
  // Decode reads every weight but the embedding table (only gathered) at least once.
  const double embedding = 128256.0 * 4096 * 2;
  CHECK(c.gpu.v > (m.weight_bytes_per_gpu().v - embedding) / 2e12);

  BatchShape prefill;
  prefill.prefills.push_back({4096, 0});
  prefill.num_sampled = 1;
  for (const auto& o : m.breakdown(prefill).ops) {
    if (o.name == "gate_up" || o.name == "qkv" || o.name == "attention_prefill") CHECK(o.bound == Bound::compute);
  }
}

TEST_CASE("the step model rejects parallel degrees the model cannot split into", "[cost]") {
  auto pred = std::make_shared<const RooflinePredictor>(simple_gpu());
  ModelArch m = llama3_8b();
  CHECK_THROWS_AS(StepModel(m, simple_gpu(), ParallelConfig{3, 1, 0.0}, pred, {}, nullptr), InputError);
  CHECK_THROWS_AS(StepModel(m, simple_gpu(), ParallelConfig{1, 5, 0.0}, pred, {}, nullptr), InputError);
}

TEST_CASE("the vocabulary is padded to 64 and split over tensor-parallel ranks", "[cost]") {
  struct FreeComm final : GroupComm {
    [[nodiscard]] OpCost all_reduce(Bytes) const override { return {}; }
    [[nodiscard]] OpCost send_recv(Bytes) const override { return {}; }
    [[nodiscard]] OpCost gather(Bytes) const override { return {}; }
  };
  auto pred = std::make_shared<const RooflinePredictor>(simple_gpu());
  auto comm = std::make_shared<const FreeComm>();
  const ModelArch llama = llama3_8b();  // 128256 = 64 x 2004: no padding
  CHECK(StepModel(llama, simple_gpu(), ParallelConfig{1, 1, 0.0}, pred, {}, nullptr).vocab_per_rank() == 128256);
  CHECK(StepModel(llama, simple_gpu(), ParallelConfig{8, 1, 0.0}, pred, {}, comm).vocab_per_rank() == 16032);
  ModelArch odd = llama;
  odd.vocab_size = 50257;  // GPT-2's vocabulary: padded to 50304
  const StepModel one(odd, simple_gpu(), ParallelConfig{1, 1, 0.0}, pred, {}, nullptr);
  const StepModel four(odd, simple_gpu(), ParallelConfig{4, 1, 0.0}, pred, {}, comm);
  CHECK(one.vocab_per_rank() == 50304);
  CHECK(four.vocab_per_rank() == 12576);
  // Untied embedding + LM head: 2 x padded rows x hidden x 2 bytes on top of the layers.
  const StepModel base(llama, simple_gpu(), ParallelConfig{1, 1, 0.0}, pred, {}, nullptr);
  CHECK(one.weight_bytes_per_gpu().v - base.weight_bytes_per_gpu().v ==
        Approx(2.0 * double(50304 - 128256) * 4096 * 2.0));
}

TEST_CASE("the event loop's step timer gives the step model's bits, decode-only steps memoized", "[cost]") {
  auto pred = std::make_shared<const RooflinePredictor>(simple_gpu());
  auto model = std::make_shared<const StepModel>(llama3_8b(), simple_gpu(), ParallelConfig{}, pred, EngineOverhead{},
                                                 nullptr);
  StepTimer timer(model);
  // Decode-only steps (every shape twice, the second from the memo) and mixed steps, which are never memoized.
  std::vector<BatchShape> shapes;
  for (std::int64_t n = 1; n <= 64; n *= 2) {
    for (std::int64_t ctx : {600, 2000, 9000}) {
      BatchShape b;
      b.num_decodes = n;
      b.decode_context_tokens = n * ctx;
      b.num_sampled = n;
      shapes.push_back(b);
      shapes.push_back(b);
      b.prefills.push_back(PrefillChunk{512, 0});
      b.num_sampled += 1;
      shapes.push_back(b);
    }
  }
  for (const BatchShape& b : shapes) {
    INFO(b.num_decodes << " decodes, " << b.decode_context_tokens << " context, " << b.prefills.size() << " prefills");
    BoundTimes bounds;
    const Seconds gpu = timer.gpu_time(b, bounds);
    const StepCost cost = model->breakdown(b);
    CHECK(gpu.v == cost.gpu.v);  // the same bits
    // The bounds sum to the GPU time (scaled exactly as the first computation scaled them).
    double sum = 0;
    for (const double x : bounds.s) sum += x;
    CHECK(sum == Approx(gpu.v).epsilon(1e-12));
    CHECK(bounds.of(Bound::memory) > 0);
  }
  // 21 decode-only steps looked up, 7 x 3 of them the second time: all hits.
  CHECK(timer.memo_lookups() == 42);
  CHECK(timer.memo_hits() == 21);
}
