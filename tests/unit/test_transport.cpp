// KV-cache transports (models/net/transport.h), their calibration (transport_calibration.h), the ingest of
// ucx_perftest / nixlbench logs (models/hw/transport_ingest.h), KV-transfer sizing (models/cost/kv_transfer.h) and
// `servesim transfer`. Exact numbers are computed by hand in the comments.
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "models/arch/model_arch.h"
#include "models/cost/kv_transfer.h"
#include "models/hw/transport_ingest.h"
#include "models/net/transport.h"
#include "models/net/transport_calibration.h"

using namespace servesim;

namespace Catch {
template <>
struct StringMaker<servesim::KvShard> {
  static std::string convert(const servesim::KvShard& k) {
    return "{" + std::to_string(k.sender_rank) + ", " + std::to_string(k.receiver_rank) + ", " +
           std::to_string(k.bytes.value()) + " B, " + std::to_string(k.heads) + " heads, stage " +
           std::to_string(k.sender_stage) + " -> " + std::to_string(k.receiver_stage) + ", " +
           std::to_string(k.layers) + " layers}";
  }
};
}  // namespace Catch

namespace {

const std::string kCatalog = test::source_dir() + "/scenarios/topologies";
const std::string kData = test::source_dir() + "/tests/data/transport";

ModelArch model(const std::string& name) {
  return ModelArch::from_hf_config(test::source_dir() + "/scenarios/models/" + name + ".json");
}

std::vector<std::string> route_names(const Topology& topo, const TransportPath& p) {
  std::vector<std::string> out{topo.vertex(topo.link(p.links.front()).from).name};
  for (const int l : p.links) out.push_back(topo.vertex(topo.link(l).to).name);
  return out;
}

TransportPath plan(const Topology& topo, const std::string& name, int src, int dst) {
  auto s = transport_registry().create(name, "test")->plan(topo, src, dst);
  INFO(s.reason);
  REQUIRE(s.path);
  return *s.path;
}

std::string reason(const Topology& topo, const std::string& name, int src, int dst) {
  auto s = transport_registry().create(name, "test")->plan(topo, src, dst);
  CHECK_FALSE(s.path);
  return s.reason;
}

}  // namespace

// ---- KV-transfer sizing ----

TEST_CASE("kv transfer: Llama-3-70B 2048 tokens is 640 MiB", "[transport]") {
  const ModelArch a = model("llama-3-70b");
  // 2 (K, V) x 80 layers x 8 KV heads x 128 head_dim x 2 bytes = 327,680 B = 320 KiB per token;
  // x 2048 tokens = 671,088,640 B = 640 MiB.
  CHECK(a.kv_bytes_per_token().value() == 327680.0);
  CHECK(kv_transfer_bytes(a, 2048).value() == 640.0 * kMiB);
  CHECK(kv_transfer_bytes(a, 0).value() == 0.0);
  CHECK(test::input_error([&] { (void)kv_transfer_bytes(a, -1); }).find("tokens = -1") != std::string::npos);
}

TEST_CASE("kv transfer: TP 8 -> TP 4 is a fan-in, TP 4 -> TP 8 a fan-out", "[transport]") {
  const ModelArch a = model("llama-3-70b");
  // One KV head over all layers, per token: 2 x 80 x 128 x 2 = 40,960 B; x 2048 tokens = 83,886,080 B = 80 MiB.
  const Bytes head{80.0 * kMiB};
  // TP 8: sender rank i holds head i. TP 4: receiver rank j holds heads 2j and 2j+1 -> from senders 2j and 2j+1.
  const std::vector<KvShard> fan_in = kv_transfer_pairs(a, 2048, 8, 4);
  const std::vector<KvShard> want_in{{0, 0, head, 1}, {1, 0, head, 1}, {2, 1, head, 1}, {3, 1, head, 1},
                                     {4, 2, head, 1}, {5, 2, head, 1}, {6, 3, head, 1}, {7, 3, head, 1}};
  CHECK(fan_in == want_in);
  // TP 4: sender rank i holds heads 2i, 2i+1. TP 8: receiver j holds head j -> from sender j / 2.
  const std::vector<KvShard> fan_out = kv_transfer_pairs(a, 2048, 4, 8);
  const std::vector<KvShard> want_out{{0, 0, head, 1}, {0, 1, head, 1}, {1, 2, head, 1}, {1, 3, head, 1},
                                      {2, 4, head, 1}, {2, 5, head, 1}, {3, 6, head, 1}, {3, 7, head, 1}};
  CHECK(fan_out == want_out);
  // Equal TP: rank i -> rank i with its 2 heads (TP 4: 160 MiB each).
  const auto same = kv_transfer_pairs(a, 2048, 4, 4);
  REQUIRE(same.size() == 4);
  for (int i = 0; i < 4; ++i) CHECK(same[static_cast<std::size_t>(i)] == KvShard{i, i, Bytes{160.0 * kMiB}, 2});
  // Either way the pairs carry the request's 640 MiB exactly once.
  for (const auto& list : {fan_in, fan_out, same}) {
    double sum = 0;
    for (const auto& s : list) sum += s.bytes.value();
    CHECK(sum == 640.0 * kMiB);
  }
}

TEST_CASE("kv transfer: KV heads replicated past 8 ranks, bad degrees refused", "[transport]") {
  const ModelArch a = model("llama-3-70b");
  // TP 16 > 8 KV heads: rank j holds head floor(j x 8 / 16) = j / 2 (replicated on 2 ranks, as vLLM does). From TP 8
  // every receiver j reads head j / 2 from sender j / 2: 16 pairs of 80 MiB = 1280 MiB (each replica is sent).
  const auto rep = kv_transfer_pairs(a, 2048, 8, 16);
  REQUIRE(rep.size() == 16);
  double sum = 0;
  for (int j = 0; j < 16; ++j) {
    CHECK(rep[static_cast<std::size_t>(j)] == KvShard{j / 2, j, Bytes{80.0 * kMiB}, 1});
    sum += rep[static_cast<std::size_t>(j)].bytes.value();
  }
  CHECK(sum == 1280.0 * kMiB);
  // TP 16 -> TP 8: head h lives on senders 2h and 2h + 1; receiver h reads it from the lower, 2h.
  const auto dedup = kv_transfer_pairs(a, 2048, 16, 8);
  REQUIRE(dedup.size() == 8);
  for (int j = 0; j < 8; ++j) CHECK(dedup[static_cast<std::size_t>(j)] == KvShard{2 * j, j, Bytes{80.0 * kMiB}, 1});
  CHECK(test::input_error([&] { (void)kv_transfer_pairs(a, 2048, 3, 8); }).find("sender tensor-parallel degree 3") !=
        std::string::npos);
  CHECK(test::input_error([&] { (void)kv_transfer_pairs(a, 2048, 8, 0); }).find("receiver") != std::string::npos);
}

TEST_CASE("kv transfer: pipeline stages send the layers they hold to the stages that hold them", "[transport]") {
  const ModelArch a = model("llama-3-70b");
  // TP 4 x PP 2 -> TP 8: sender stage 0 holds layers 0-39, stage 1 layers 40-79; the receiver's one stage gathers
  // both. Receiver rank j holds head j, from sender rank j / 2 of each stage: one head over 40 layers, 2048 tokens
  // = 2 x 40 x 128 x 2 x 2048 = 41,943,040 B = 40 MiB.
  const auto pp = kv_transfer_pairs(a, 2048, KvLayout{4, 2}, KvLayout{8, 1});
  REQUIRE(pp.size() == 16);
  double sum = 0;
  std::size_t n = 0;
  for (int st = 0; st < 2; ++st) {  // sender stage by sender stage, each in receiver-rank order
    for (int j = 0; j < 8; ++j) {
      const KvShard want{j / 2, j, Bytes{40.0 * kMiB}, 1, st, 0, 40};
      CHECK(pp[n++] == want);
    }
  }
  for (const auto& k : pp) sum += k.bytes.value();
  CHECK(sum == 640.0 * kMiB);
  // Uneven stages (vLLM's get_pp_indices: the L % p extra layers go to the stages before the last, from the
  // second-to-last backwards). PP 3 over 80 layers = 27, 27, 26 (layers 0-26, 27-53, 54-79); PP 2 = 40, 40.
  // Receiver stage 0 (0-39): 27 layers from stage 0, 13 from stage 1; receiver stage 1 (40-79): 14 from stage 1,
  // 26 from stage 2. TP 1 -> 1: all 8 heads, 2 x 128 x 2 x 8 x 2048 = 8 MiB a layer.
  const auto uneven = kv_transfer_pairs(a, 2048, KvLayout{1, 3}, KvLayout{1, 2});
  const std::vector<KvShard> want{{0, 0, Bytes{27.0 * 8 * kMiB}, 8, 0, 0, 27},
                                  {0, 0, Bytes{13.0 * 8 * kMiB}, 8, 1, 0, 13},
                                  {0, 0, Bytes{14.0 * 8 * kMiB}, 8, 1, 1, 14},
                                  {0, 0, Bytes{26.0 * 8 * kMiB}, 8, 2, 1, 26}};
  CHECK(uneven == want);
  // Without pipeline parallelism: kv_transfer_pairs' pairs, every layer each.
  const auto flat = kv_transfer_pairs(a, 2048, KvLayout{8, 1}, KvLayout{4, 1});
  const auto tp_only = kv_transfer_pairs(a, 2048, 8, 4);
  REQUIRE(flat.size() == tp_only.size());
  for (std::size_t i = 0; i < flat.size(); ++i) {
    CHECK(flat[i].bytes.value() == tp_only[i].bytes.value());
    CHECK(flat[i].layers == 80);
  }
  CHECK(test::input_error([&] { (void)kv_transfer_pairs(a, 2048, KvLayout{1, 0}, KvLayout{1, 1}); })
            .find("sender pipeline-parallel degree 0") != std::string::npos);
  CHECK(test::input_error([&] { (void)kv_transfer_pairs(a, 2048, KvLayout{1, 1}, KvLayout{1, 81}); })
            .find("receiver pipeline-parallel degree 81") != std::string::npos);
}

TEST_CASE("kv transfer: MLA latent is not split by TP", "[transport]") {
  const ModelArch a = model("deepseek-v3");
  REQUIRE(a.mla.enabled());
  // 61 layers x (512 + 64) latent x 2 bytes = 70,272 B per token; x 2048 = 143,917,056 B, on every rank.
  const Bytes all{61.0 * 576.0 * 2.0 * 2048.0};
  CHECK(kv_transfer_bytes(a, 2048).value() == all.value());
  const auto pairs = kv_transfer_pairs(a, 2048, 8, 4);  // each receiver j reads the whole latent from sender j
  const std::vector<KvShard> want{{0, 0, all, 0}, {1, 1, all, 0}, {2, 2, all, 0}, {3, 3, all, 0}};
  CHECK(pairs == want);
  const auto up = kv_transfer_pairs(a, 2048, 2, 4);  // receiver j from sender j mod 2
  const std::vector<KvShard> want_up{{0, 0, all, 0}, {1, 1, all, 0}, {0, 2, all, 0}, {1, 3, all, 0}};
  CHECK(up == want_up);
}

TEST_CASE("kv transfer: layer-streamed exposure", "[transport]") {
  // Prefill 80 ms over 80 layers: a layer every 1 ms.
  // Sends of 0.5 ms keep up: only the last layer's send is left after the prefill, 0.5 ms.
  CHECK(layer_streamed_exposed(ms(80), 80, ms(0.5)).value() == Approx(0.5e-3).epsilon(1e-12));
  // Sends of 2 ms fall behind by 1 ms a layer: 2 + 79 x (2 - 1) = 81 ms left.
  CHECK(layer_streamed_exposed(ms(80), 80, ms(2)).value() == Approx(81e-3).epsilon(1e-12));
  // Exactly keeping up (x = P / L): the last layer's 1 ms.
  CHECK(layer_streamed_exposed(ms(80), 80, ms(1)).value() == Approx(1e-3).epsilon(1e-12));
  // One layer: the whole send.
  CHECK(layer_streamed_exposed(ms(10), 1, ms(3)).value() == Approx(3e-3).epsilon(1e-12));
  CHECK(test::input_error([] { (void)layer_streamed_exposed(ms(1), 0, ms(1)); }).find("layers = 0") !=
        std::string::npos);
}

// ---- Transports ----

TEST_CASE("transport: GPUDirect RDMA between two DGX H100 nodes", "[transport]") {
  const Topology topo = load_topology("cluster-2x-dgx-h100", kCatalog);
  const TransportPath p = plan(topo, "gpudirect_rdma", 0, 8);
  const std::vector<std::string> want{"n0.gpu0", "n0.pcie0", "n0.nic0", "leaf0", "n1.nic0", "n1.pcie0", "n1.gpu0"};
  CHECK(route_names(topo, p) == want);
  // Narrowest: the 400 Gb/s NIC link, 50 GB/s x 0.96 = 48 GB/s (PCIe: 63 x 55/63 = 55 GB/s).
  CHECK(p.rate.value() == Approx(48e9).epsilon(1e-12));
  CHECK(p.limit.find("n0.nic0 -> leaf0") != std::string::npos);
  // 640 MiB alone: 5.28 us setup + 1 message x 3.11 us + 671,088,640 B / 48 GB/s (13,981.013 us) = 13,989.403 us.
  CHECK(p.messages(Bytes{640.0 * kMiB}) == 1);
  CHECK(p.time_alone(Bytes{640.0 * kMiB}).value() == Approx(13989.40333e-6).epsilon(1e-9));
  // GPU-initiated: same path, 3.11 / 9.5 = 0.327 us per message.
  const TransportPath g = plan(topo, "gpu_initiated_rdma", 0, 8);
  CHECK(g.links == p.links);
  CHECK(g.per_message.value() == Approx(3.11e-6 / 9.5).epsilon(1e-12));
  // A cross-rail pair goes through the spine: n0.gpu0 -> ... leaf0 -> spine -> leaf3 -> n1.nic3 -> ... n1.gpu3.
  const auto cross = route_names(topo, plan(topo, "gpudirect_rdma", 0, 11));
  CHECK(std::find(cross.begin(), cross.end(), "spine") != cross.end());
  CHECK(cross.back() == "n1.gpu3");
}

TEST_CASE("transport: host-staged RDMA and TCP cross the CPUs", "[transport]") {
  const Topology topo = load_topology("cluster-2x-dgx-h100", kCatalog);
  const TransportPath h = plan(topo, "host_staged_rdma", 0, 8);
  const std::vector<std::string> want{"n0.gpu0", "n0.pcie0", "n0.cpu0", "n0.pcie0", "n0.nic0",  "leaf0",
                                      "n1.nic0", "n1.pcie0", "n1.cpu0", "n1.pcie0", "n1.gpu0"};
  CHECK(route_names(topo, h) == want);
  CHECK(h.rate.value() == Approx(48e9).epsilon(1e-12));
  CHECK(h.staging_copies == 2);
  CHECK(h.staging_rate.value() == Approx(55e9).epsilon(1e-12));
  // 640 MiB: 5.28 us + fill 2 x 524,288 B / 55 GB/s (19.065 us) + 1280 fragments x 9.55 us (12,224 us)
  // + 13,981.013 us = 26,229.358 us.
  CHECK(h.messages(Bytes{640.0 * kMiB}) == 1280);
  CHECK(h.time_alone(Bytes{640.0 * kMiB}).value() == Approx(26229.3583e-6).epsilon(1e-8));
  const TransportPath t = plan(topo, "tcp", 0, 8);
  CHECK(t.links == h.links);
  // TCP stack: 87 GB/s / 2.4 / 4 = 9.0625 GB/s. 640 MiB: 15.68 us + 19.065 us + 1280 x 14.75 us (18,880 us)
  // + 671,088,640 / 9.0625e9 (74,051.160 us) = 92,965.905 us.
  CHECK(t.rate.value() == Approx(9.0625e9).epsilon(1e-12));
  CHECK(t.limit.find("TCP stack") != std::string::npos);
  CHECK(t.time_alone(Bytes{640.0 * kMiB}).value() == Approx(92965.905e-6).epsilon(1e-8));
  // The flow handed to a flow network reproduces the time alone: start after setup + fill, then bytes / cap.
  const Bytes b{640.0 * kMiB};
  const FlowDemand d = t.flow_demand(b);
  CHECK((t.start_delay(b) + b / d.cap).value() == Approx(t.time_alone(b).value()).epsilon(1e-12));
  CHECK(d.links == t.links);  // n0.pcie0 -> n0.cpu0 and n0.cpu0 -> n0.pcie0 are two directed links: none repeats
}

TEST_CASE("transport: NVLink and PCIe peer-to-peer inside a node", "[transport]") {
  const Topology dgx = load_topology("dgx-h100", kCatalog);
  const TransportPath n = plan(dgx, "nvlink", 0, 1);
  CHECK(route_names(dgx, n) == std::vector<std::string>{"gpu0", "nvswitch", "gpu1"});
  // 450 GB/s x 380/450 = 380 GB/s; 640 MiB: 1 us + 3.11 us + 671,088,640 / 380e9 (1,766.023 us) = 1,770.133 us.
  CHECK(n.rate.value() == Approx(380e9).epsilon(1e-12));
  CHECK(n.time_alone(Bytes{640.0 * kMiB}).value() == Approx(1770.13274e-6).epsilon(1e-8));
  CHECK(reason(dgx, "pcie_p2p", 0, 1).find("NVLink") != std::string::npos);
  CHECK(reason(dgx, "gpudirect_rdma", 0, 1).find("same node") != std::string::npos);
  CHECK(reason(dgx, "tcp", 0, 1).find("same node") != std::string::npos);

  const Topology l40s = load_topology("pcie-8x-l40s", kCatalog);
  // GPUs 0 and 1 share PCIe switch 0: 31.5 GB/s x 55/63.
  const TransportPath p = plan(l40s, "pcie_p2p", 0, 1);
  CHECK(route_names(l40s, p) == std::vector<std::string>{"gpu0", "pcie0", "gpu1"});
  CHECK(p.rate.value() == Approx(31.5e9 * 55.0 / 63.0).epsilon(1e-12));
  // GPU 5 is under the other socket: no CUDA peer access; staged through host memory instead.
  CHECK(reason(l40s, "pcie_p2p", 0, 5).find("socket link cpu0 -> cpu1") != std::string::npos);
  CHECK(reason(l40s, "nvlink", 0, 5).find("not NVLink") != std::string::npos);
  const TransportChoice c = select_transport(l40s, 0, 5, Bytes{kMiB});
  CHECK(c.path.transport == "host_staged_rdma");
  CHECK(route_names(l40s, c.path) == std::vector<std::string>{"gpu0", "pcie0", "cpu0", "cpu1", "pcie1", "gpu5"});
}

TEST_CASE("transport: selection picks the fastest, forced ones are checked", "[transport]") {
  const Topology topo = load_topology("cluster-2x-dgx-h100", kCatalog);
  const Bytes kv{640.0 * kMiB};
  const TransportChoice c = select_transport(topo, 0, 8, kv);
  // GPU-initiated RDMA is 2.8 us faster but needs a device-side API: not picked unless forced.
  CHECK(c.path.transport == "gpudirect_rdma");
  REQUIRE(c.others.size() == 3);
  CHECK(c.others[0].path.transport == "gpu_initiated_rdma");
  CHECK(c.others[1].path.transport == "host_staged_rdma");
  CHECK(c.others[2].path.transport == "tcp");
  CHECK(c.unsupported.size() == 2);  // nvlink, pcie_p2p
  CHECK(select_transport(topo, 0, 8, kv, std::string("gpu_initiated_rdma")).path.transport == "gpu_initiated_rdma");
  CHECK(select_transport(topo, 0, 1, kv).path.transport == "nvlink");
  // A message size (a KV block's descriptor, 64 KiB) makes per-message costs count: 10,240 x 3.11 us = 31.8 ms.
  const TransportChoice small = select_transport(topo, 0, 8, kv, std::nullopt, nullptr, Bytes{64.0 * 1024});
  CHECK(small.path.messages(kv) == 10240);
  CHECK(small.time.value() == Approx(5.28e-6 + 10240 * 3.11e-6 + 671088640.0 / 48e9).epsilon(1e-9));

  const std::string nv = test::input_error([&] { (void)select_transport(topo, 0, 8, kv, std::string("nvlink")); });
  CHECK(nv.find("transport nvlink: cannot carry GPU 0 (n0.gpu0) -> GPU 8 (n1.gpu0) on cluster-2x-dgx-h100") !=
        std::string::npos);
  CHECK(nv.find("different nodes") != std::string::npos);
  const std::string unknown = test::input_error([&] { (void)select_transport(topo, 0, 8, kv, std::string("rdma")); });
  CHECK(unknown.find("unknown transport 'rdma'") != std::string::npos);
  CHECK(unknown.find("gpudirect_rdma") != std::string::npos);
  CHECK(test::input_error([&] { (void)select_transport(topo, 3, 3, kv); }).find("same GPU") != std::string::npos);
  CHECK(test::input_error([&] { (void)select_transport(topo, 0, 16, kv); }).find("GPU index 16") != std::string::npos);
  const Topology dgx = load_topology("dgx-h100", kCatalog);
  CHECK(test::input_error([&] { (void)select_transport(dgx, 0, 1, kv, std::string("gpudirect_rdma")); })
            .find("same node") != std::string::npos);
  CHECK(transport_names_text() == "nvlink, pcie_p2p, gpudirect_rdma, gpu_initiated_rdma, host_staged_rdma, tcp");
}

TEST_CASE("transport: a topology without NICs has no RDMA", "[transport]") {
  Topology t("two-boxes");
  auto vertex = [&t](const std::string& name, VertexKind kind, int node) {
    TopoVertex v;
    v.name = name;
    v.kind = kind;
    v.node = node;
    return t.add_vertex(v);
  };
  const int a = vertex("a.gpu", VertexKind::gpu, 0), b = vertex("b.gpu", VertexKind::gpu, 1);
  const int ca = vertex("a.cpu", VertexKind::cpu, 0), cb = vertex("b.cpu", VertexKind::cpu, 1);
  t.add_link(a, ca, BytesPerSec{32e9}, us(0.5));
  t.add_link(b, cb, BytesPerSec{32e9}, us(0.5));
  t.add_link(ca, cb, BytesPerSec{10e9}, us(5));
  CHECK(reason(t, "gpudirect_rdma", 0, 1).find("has no NIC") != std::string::npos);
  CHECK(reason(t, "host_staged_rdma", 0, 1).find("has no NIC") != std::string::npos);
  CHECK(test::input_error([&] { (void)select_transport(t, 0, 1, Bytes{1e6}); }).find("no transport can carry") !=
        std::string::npos);
}

// ---- Calibration ----

TEST_CASE("transport calibration: the fit recovers the cost terms", "[transport]") {
  auto row = [](const std::string& tr, double bytes, double us_, bool stream) {
    TransportMeasurement m;
    m.transport = tr;
    m.bytes = Bytes{bytes};
    m.time = Seconds{us_ * 1e-6};
    m.stream = stream;
    return m;
  };
  // host_staged_rdma, fragments of 512 KiB, generated from setup 20 us, 10 us per fragment, 40 GB/s:
  //   256 KiB single: 20 + 1 x 10 + 262,144 / 40e3 (6.5536)    = 36.5536 us
  //   2 MiB single:   20 + 4 x 10 + 2,097,152 / 40e3 (52.4288)  = 112.4288 us
  //   16 MiB single:  20 + 32 x 10 + 16,777,216 / 40e3 (419.4304) = 759.4304 us
  //   1 MiB stream:   2 x 10 + 1,048,576 / 40e3 (26.2144)       = 46.2144 us
  const std::vector<TransportMeasurement> rows{row("host_staged_rdma", 262144, 36.5536, false),
                                               row("host_staged_rdma", 2097152, 112.4288, false),
                                               row("host_staged_rdma", 16777216, 759.4304, false),
                                               row("host_staged_rdma", 1048576, 46.2144, true)};
  const auto cal = TransportCalibration::fit(rows, "rows");
  const TransportFit* f = cal.find("host_staged_rdma");
  REQUIRE(f != nullptr);
  CHECK(f->fitted == "setup, per_message, rate");
  CHECK(f->setup.value() == Approx(20e-6).epsilon(1e-9));
  CHECK(f->per_message.value() == Approx(10e-6).epsilon(1e-9));
  CHECK(f->rate.value() == Approx(40e9).epsilon(1e-9));
  CHECK(f->max_error_pct < 1e-6);
  // One message per transfer (gpudirect_rdma, 1 GiB messages) cannot tell setup from per_message: per_message keeps
  // its default 3.11 us, setup takes the rest. From 10 us + B / 45 GB/s: setup = 10 - 3.11 = 6.89 us.
  const std::vector<TransportMeasurement> gdr{row("gpudirect_rdma", 1048576, 10 + 1048576 / 45e3, false),
                                              row("gpudirect_rdma", 4194304, 10 + 4194304 / 45e3, false),
                                              row("gpudirect_rdma", 16777216, 10 + 16777216 / 45e3, false)};
  const TransportFit g = *TransportCalibration::fit(gdr, "gdr").find("gpudirect_rdma");
  CHECK(g.fitted == "setup, rate");
  CHECK(g.setup.value() == Approx(6.89e-6).epsilon(1e-9));
  CHECK(g.per_message.value() == Approx(3.11e-6).epsilon(1e-12));
  CHECK(g.rate.value() == Approx(45e9).epsilon(1e-9));
  // Applied to a path: fitted terms, rate capped by no link (45 < 50 GB/s raw).
  const Topology topo = load_topology("cluster-2x-dgx-h100", kCatalog);
  const auto calg = TransportCalibration::fit(gdr, "gdr");
  const TransportChoice c = select_transport(topo, 0, 8, Bytes{4194304}, std::nullopt, &calg);
  CHECK(c.path.calibrated);
  CHECK(c.time.value() == Approx((10 + 4194304 / 45e3) * 1e-6).epsilon(1e-9));
  // Time falling with size fits no positive rate; one size is not enough.
  CHECK(test::input_error([&] {
          (void)TransportCalibration::fit({row("tcp", 1e6, 100, false), row("tcp", 2e6, 50, false)}, "bad");
        }).find("bad: transport tcp: the 2 rows do not fit") != std::string::npos);
  CHECK(test::input_error([&] { (void)TransportCalibration::fit({row("tcp", 1e6, 100, false)}, "one"); })
            .find("2 or more sizes") != std::string::npos);
}

TEST_CASE("transport calibration: profile CSV errors name file:line", "[transport]") {
  const auto dir = test::temp_dir("xport-csv");
  const std::string hdr = std::string(kTransportCsvHeader) + "\n";
  auto err = [&](const std::string& text) {
    const std::string p = test::write_file(dir / "t.csv", text);
    return test::input_error([&] { (void)read_transport_csv(p); });
  };
  CHECK(err("transport,bytes,time_us\n").find("t.csv:1: expected the header") != std::string::npos);
  CHECK(err(hdr + "rdma,1MiB,10,single,x\n").find("t.csv:2: unknown transport 'rdma' (valid: nvlink, pcie_p2p") !=
        std::string::npos);
  CHECK(err(hdr + "tcp,1MiB,0,single,x\n").find("t.csv:2: time_us: must be > 0") != std::string::npos);
  CHECK(err(hdr + "# c\ntcp,1MiB,5,burst,x\n").find("t.csv:3: mode: 'burst'") != std::string::npos);
  CHECK(err(hdr + "tcp,lots,5,single,x\n").find("t.csv:2: bytes:") != std::string::npos);
  CHECK(err(hdr).find("has no rows") != std::string::npos);
  const std::string ok = test::write_file(dir / "ok.csv", hdr + "tcp,1MiB,120.5,,log a, run 2\ntcp,4096,20,stream,b\n");
  const auto rows = read_transport_csv(ok);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].bytes.value() == kMiB);
  CHECK(rows[0].time.value() == Approx(120.5e-6).epsilon(1e-12));
  CHECK_FALSE(rows[0].stream);
  CHECK(rows[0].source == "log a, run 2");
  CHECK(rows[1].stream);
}

// ---- Ingest ----

TEST_CASE("transport ingest: ucx_perftest logs", "[transport]") {
  const TransportLog lat = read_ucx_perftest_log(kData + "/ucx_perftest-tag_lat-cuda.log");
  CHECK(lat.test == "tag match latency");
  CHECK(lat.memory == "cuda -> cuda");
  REQUIRE(lat.samples.size() == 2);  // one per run: its Final row
  CHECK(lat.samples[0].bytes == 65536);
  CHECK(lat.samples[0].time_us == 9.760);
  CHECK_FALSE(lat.samples[0].stream);
  CHECK(lat.samples[1].bytes == 4194304);
  CHECK(lat.samples[1].time_us == 95.770);
  CHECK(lat.skipped_lines == 2);  // the '#' comment and the UCX WARN line
  const TransportLog bw = read_ucx_perftest_log(kData + "/ucx_perftest-tag_bw-cuda.log");
  REQUIRE(bw.samples.size() == 1);
  CHECK(bw.samples[0].stream);
  CHECK(bw.samples[0].time_us == 90.490);
  // 44,203.78 MB/s (2^20 B/s) = 46.35 GB/s.
  CHECK(bw.samples[0].bandwidth_GBps == Approx(44203.78 * 1048576 / 1e9).epsilon(1e-12));

  // A message size that does not belong to the rows, and a log without results.
  std::string text = test::read_file(kData + "/ucx_perftest-tag_bw-cuda.log");
  text.replace(text.find("4194304"), 7, "1048576");
  std::istringstream wrong(text);
  CHECK(test::input_error([&] { (void)parse_ucx_perftest_log(wrong, "w.log"); })
            .find("w.log:17: bandwidth 44203.78 MB/s does not match message size 1048576") != std::string::npos);
  std::istringstream none("Waiting for connection...\n");
  CHECK(test::input_error([&] { (void)parse_ucx_perftest_log(none, "n.log"); }).find("n.log: no ucx_perftest") !=
        std::string::npos);
}

TEST_CASE("transport ingest: nixlbench logs, old and new layouts", "[transport]") {
  const TransportLog v0 = read_nixlbench_log(kData + "/nixlbench-v0-dgx-h100.log");
  REQUIRE(v0.samples.size() == 14);
  // 4096 B at 0.628714 GB/s: 4096 / 628.714 = 6.5149 us (the log's Avg Lat. 6.51488).
  CHECK(v0.samples[0].bytes == 4096);
  CHECK(v0.samples[0].time_us == Approx(4096 / 628.714).epsilon(1e-12));
  CHECK(v0.samples[13].bytes == 33554432);
  CHECK_FALSE(v0.samples[13].stream);
  CHECK(v0.memory.empty());
  const TransportLog v1 = read_nixlbench_log(kData + "/nixlbench-ucx-vram.log");
  CHECK(v1.test == "UCX WRITE");
  CHECK(v1.memory == "VRAM -> VRAM");
  REQUIRE(v1.samples.size() == 3);
  // Block 65,536 x batch 4 = 262,144 B at 20 GB/s: 13.1072 us per batch.
  CHECK(v1.samples[0].bytes == 262144);
  CHECK(v1.samples[0].time_us == Approx(13.1072).epsilon(1e-12));
  CHECK(gpu_memory_both_sides(v1));
  // Several transfers in flight make the rows stream rows; a non-pairwise scheme is refused.
  std::string text = test::read_file(kData + "/nixlbench-ucx-vram.log");
  const std::string depth = "Pipeline depth (--pipeline_depth=N)                         : 1";
  text.replace(text.find(depth), depth.size(), depth.substr(0, depth.size() - 1) + "8");
  std::istringstream deep(text);
  CHECK(parse_nixlbench_log(deep, "d.log").samples[0].stream);
  text.replace(text.find(": pairwise"), 10, ": manytoone");
  std::istringstream many(text);
  CHECK(test::input_error([&] { (void)parse_nixlbench_log(many, "m.log"); }).find("m.log:12: scheme 'manytoone'") !=
        std::string::npos);
  std::istringstream dram("Initiator seg type (--initiator_seg_type=[DRAM,VRAM])       : DRAM\n"
                          "Block Size (B)      Batch Size     B/W (GB/Sec)\n4096                1              1.5\n");
  const TransportLog d = parse_nixlbench_log(dram, "dram.log");
  CHECK_FALSE(gpu_memory_both_sides(d));
}

TEST_CASE("transport ingest: merged profile rows replace the same log's", "[transport]") {
  const TransportLog v0 = read_nixlbench_log(kData + "/nixlbench-v0-dgx-h100.log");
  const std::string once = merge_transport_csv("", "new.csv", {v0}, "gpudirect_rdma");
  CHECK(once.rfind(std::string(kTransportCsvHeader) + "\n", 0) == 0);
  CHECK(test::count_lines(once) == 15);
  CHECK(once.find("gpudirect_rdma,4096,6.51488594,single,nixlbench-v0-dgx-h100.log\n") != std::string::npos);
  const std::string twice = merge_transport_csv("# kept\n" + once + "tcp,1,5,single,other\n", "old.csv", {v0},
                                                "gpudirect_rdma");
  CHECK(test::count_lines(twice) == 17);  // comment + header + 14 rows + the other row, not 14 more
  CHECK(twice.find("# kept\n") == 0);
  CHECK(test::input_error([&] { (void)merge_transport_csv("a,b\n", "x.csv", {v0}, "tcp"); })
            .find("x.csv:1: not a transport profile") != std::string::npos);
  // The rows fit: 14 single rows of one 1-GiB message each -> setup and rate, per_message kept at 3.11 us.
  const auto dir = test::temp_dir("xport-merge");
  const std::string p = test::write_file(dir / "p.csv", once);
  const TransportFit f = *TransportCalibration::from_csv(p).find("gpudirect_rdma");
  CHECK(f.fitted == "setup, rate");
  CHECK(f.rows == 14);
  CHECK(f.rate.value() > 40e9);
  CHECK(f.rate.value() < 50e9);
}

// ---- servesim transfer / ingest ----

TEST_CASE("transfer CLI: 640 MiB of KV over one NIC and over eight", "[transport]") {
  const std::string topo = "--topology " + kCatalog + "/cluster-2x-dgx-h100.toml";
  const auto one = test::run_cli("transfer " + topo + " --from 0 --to 8 --bytes 640MiB --json");
  INFO(one.output);
  REQUIRE(one.code == 0);
  const auto j = nlohmann::json::parse(one.output);
  CHECK(j["transport"] == "gpudirect_rdma");
  // 13,989.403 us (see "GPUDirect RDMA between two DGX H100 nodes"): 47.97 GB/s achieved.
  CHECK(j["time_us"].get<double>() == Approx(13989.40333).epsilon(1e-9));
  CHECK(j["bandwidth_GBps"].get<double>() == Approx(671088640.0 / 13989.40333e3).epsilon(1e-9));
  REQUIRE(j["pairs"].size() == 1);
  CHECK(j["pairs"][0]["route"].size() == 7);
  REQUIRE(j["alternatives"].size() == 3);
  CHECK(j["alternatives"][2]["transport"] == "tcp");
  // TCP: 92,965.905 us = 6.65x.
  CHECK(j["alternatives"][2]["slower_x"].get<double>() == Approx(92965.905 / 13989.40333).epsilon(1e-8));

  // Eight rails: 80 MiB each, no shared link: 5.28 + 3.11 + 83,886,080 / 48e3 (1,747.627 us) = 1,756.017 us.
  const auto eight =
      test::run_cli("transfer " + topo + " --from 0,1,2,3,4,5,6,7 --to 8-15 --bytes 640MiB --json");
  INFO(eight.output);
  REQUIRE(eight.code == 0);
  const auto k = nlohmann::json::parse(eight.output);
  CHECK(k["time_us"].get<double>() == Approx(1756.01667).epsilon(1e-8));
  CHECK(k["pairs"].size() == 8);
  for (const auto& p : k["pairs"]) CHECK(p["time_us"].get<double>() == Approx(1756.01667).epsilon(1e-8));

  // Two pairs from GPU 0 (to GPUs 8 and 9, 80 MiB each) share n0.gpu0's PCIe links and its NIC's link to leaf0,
  // which carries 50 GB/s x 0.96 = 48 GB/s of RDMA in all (transfer_link_capacities): max-min gives each 24 GB/s
  // (below its 47.97 GB/s cap, so the per-message cost hides behind the wire).
  // Each: 5.28 us setup + 83,886,080 B / 24 GB/s (3,495.253 us) = 3,500.533 us.
  const auto shared = test::run_cli("transfer " + topo + " --from 0,0 --to 8,9 --bytes 160MiB --json");
  INFO(shared.output);
  REQUIRE(shared.code == 0);
  const auto s = nlohmann::json::parse(shared.output);
  CHECK(s["time_us"].get<double>() == Approx(3500.53333).epsilon(1e-8));

  const auto text = test::run_cli("transfer " + topo + " --from 0 --to 8 --bytes 640MiB");
  INFO(text.output);
  CHECK(text.code == 0);
  CHECK(text.output.find("13.989 ms, 47.97 GB/s, gpudirect_rdma") != std::string::npos);
  CHECK(text.output.find("n0.gpu0 -> n0.pcie0 -> n0.nic0 -> leaf0 -> n1.nic0 -> n1.pcie0 -> n1.gpu0") !=
        std::string::npos);
  CHECK(text.output.find("tcp") != std::string::npos);
  CHECK(text.output.find("TCP stack") != std::string::npos);
  CHECK(text.output.find("nvlink              cannot carry") != std::string::npos);
}

TEST_CASE("transfer CLI: bad input is one line and exit 2", "[transport]") {
  const std::string topo = "--topology " + kCatalog + "/cluster-2x-dgx-h100.toml";
  auto expect = [](const test::CliResult& r, const std::string& what) {
    INFO(r.output);
    CHECK(r.code == 2);
    CHECK(test::count_lines(r.output) == 1);
    CHECK(r.output.rfind("servesim: error: ", 0) == 0);
    CHECK(r.output.find(what) != std::string::npos);
  };
  expect(test::run_cli("transfer " + topo + " --from 0 --to 99 --bytes 1MiB"),
         "--to '99': GPU 99 does not exist (topology cluster-2x-dgx-h100 has 16 GPUs, 0-15)");
  expect(test::run_cli("transfer " + topo + " --from 0,1 --to 8 --bytes 1MiB"),
         "--from has 2 GPUs but --to has 1");
  expect(test::run_cli("transfer " + topo + " --from 0 --to 8 --bytes 1MiB --transport nvlink"),
         "--transport nvlink: cannot carry GPU 0 (n0.gpu0) -> GPU 8 (n1.gpu0)");
  expect(test::run_cli("transfer " + topo + " --from 0 --to 8 --bytes 1MiB --transport infiniband"),
         "--transport: unknown transport 'infiniband' (valid: ");
  expect(test::run_cli("transfer " + topo + " --from 0 --to x --bytes 1MiB"), "'x' is not a GPU index");
  expect(test::run_cli("transfer " + topo + " --from 0 --to 8 --bytes 0"), "--bytes '0'");
  expect(test::run_cli("transfer --topology dgx-h100 --from 0 --to 1 --bytes 1MiB --transport tcp"), "same node");
}

TEST_CASE("ingest CLI: ucx_perftest to a profile that transfer uses", "[transport]") {
  const auto dir = test::temp_dir("xport-ingest");
  const std::string out = (dir / "transports.csv").string();
  const auto r = test::run_cli("ingest ucx_perftest " + kData + "/ucx_perftest-tag_lat-cuda.log " + kData +
                               "/ucx_perftest-tag_bw-cuda.log --transport gpudirect_rdma --out " + out);
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(r.output.find("wrote 3 gpudirect_rdma rows to") != std::string::npos);
  const auto rows = read_transport_csv(out);
  REQUIRE(rows.size() == 3);
  CHECK(rows[2].stream);
  const auto t = test::run_cli("transfer --topology " + kCatalog + "/cluster-2x-dgx-h100.toml --from 0 --to 8 " +
                               "--bytes 4MiB --profile " + out);
  INFO(t.output);
  CHECK(t.code == 0);
  CHECK(t.output.find("calibrated gpudirect_rdma from") != std::string::npos);
  CHECK(t.output.find("(calibrated)") != std::string::npos);
  // Host memory on one side is refused with --out (nothing written) and a warning without.
  const std::string host = test::write_file(
      dir / "host.log",
      "| Send memory:  host |\n| Recv memory:  cuda |\n| Message size: 4096 |\n| overhead (usec) |\n"
      "Final:                  1000      1.000     1.000     1.000     3906.25    3906.25     1000000     1000000\n");
  const auto bad = test::run_cli("ingest ucx_perftest " + host + " --transport tcp --out " + out);
  CHECK(bad.code == 2);
  CHECK(bad.output.find("memory host -> cuda") != std::string::npos);
  CHECK(read_transport_csv(out).size() == 3);
  const auto warn = test::run_cli("ingest ucx_perftest " + host + " --transport tcp");
  CHECK(warn.code == 0);
  CHECK(warn.output.find("servesim: warning:") != std::string::npos);
  const auto unknown = test::run_cli("ingest nixlbench " + host + " --transport smoke");
  CHECK(unknown.code == 2);
  CHECK(unknown.output.find("unknown transport 'smoke'") != std::string::npos);
}
