// Reading topology catalogue files (format: scenarios/topologies/README.md).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include "models/common/config.h"
#include "models/common/error.h"
#include "models/common/input_file.h"
#include "models/net/topology.h"

namespace servesim {
namespace {

// Defaults of the [[vertex]] keys of an nvswitch.
// NCCL's tuning model credits NVLS with 85 % of the NVLink bandwidth on Hopper (nvlsEfficiency, NCCL 2.19+
// src/graph/tuning.cc); the catalogue can override it per switch.
// Measured, not NCCL's tuning constant (0.85 of busbw): 8xH200 NVLS all_reduce at 16 GiB reaches algbw 275 GB/s
// = 0.61 of the 450 GB/s NVLink4 bandwidth per direction (calibrate/data/published.md).
constexpr double kDefaultNvlsEfficiency = 0.61;

// Expands "gpu[0-3]" -> gpu0 gpu1 gpu2 gpu3 and "pcie[0,0,1,1]" -> pcie0 pcie0 pcie1 pcie1 (ranges and single
// numbers may be mixed: "x[0-1,4]"). A name without brackets is itself. Throws InputError with a bare message.
std::vector<std::string> expand_names(const std::string& pattern) {
  const auto open = pattern.find('[');
  if (open == std::string::npos) {
    if (pattern.find(']') != std::string::npos) throw InputError("unbalanced ']' in '" + pattern + "'");
    return {pattern};
  }
  const auto close = pattern.find(']', open);
  if (close == std::string::npos) throw InputError("unbalanced '[' in '" + pattern + "'");
  const std::string head = pattern.substr(0, open);
  const std::string tail = pattern.substr(close + 1);
  if (tail.find('[') != std::string::npos || tail.find(']') != std::string::npos) {
    throw InputError("only one [...] group is allowed in '" + pattern + "'");
  }
  const std::string spec = pattern.substr(open + 1, close - open - 1);
  std::vector<std::string> out;
  auto number = [&](const std::string& s) {
    if (s.empty() || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; }) ||
        s.size() > 6) {
      throw InputError("'" + s + "' in '" + pattern + "' is not an index (write [0-7] or [0,0,1,1])");
    }
    return std::stoi(s);
  };
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    auto comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    const std::string item = spec.substr(pos, comma - pos);
    const auto dash = item.find('-');
    if (dash == std::string::npos) {
      out.push_back(head + std::to_string(number(item)) + tail);
    } else {
      const int lo = number(item.substr(0, dash));
      const int hi = number(item.substr(dash + 1));
      if (hi < lo) throw InputError("empty range '" + item + "' in '" + pattern + "'");
      for (int i = lo; i <= hi; ++i) out.push_back(head + std::to_string(i) + tail);
    }
    pos = comma + 1;
  }
  return out;
}

std::vector<std::string> expand_key(const Config& c, const std::string& key) {
  const std::string pattern = c.str(key);
  try {
    return expand_names(pattern);
  } catch (const InputError& e) {
    c.fail(key, e.what());
  }
}

void read_vertices(const Config& cfg, Topology& topo) {
  bool first_gpu = true;
  for (const Config& v : cfg.tables("vertex")) {
    const std::string kind_text = v.str("kind");
    const auto kind = parse_vertex_kind(kind_text);
    if (!kind) v.fail("kind", "unknown vertex kind '" + kind_text + "' (valid: " + vertex_kind_names() + ")");
    TopoVertex proto;
    proto.kind = *kind;
    proto.where = v.where();
    if (*kind == VertexKind::nic) {
      proto.nic_bandwidth = v.bandwidth("bandwidth");
      if (!(proto.nic_bandwidth.value() > 0.0)) v.fail("bandwidth", "must be > 0");
    }
    if (*kind == VertexKind::gpu) {
      const auto cc = v.positive_int_or("compute_capability", 90);
      if (cc < 60 || cc > 200) v.fail("compute_capability", "must be a CUDA compute capability x 10 in [60, 200], e.g. 90");
      proto.compute_capability = static_cast<int>(cc);
    }
    if (*kind == VertexKind::nvswitch) {
      proto.nvls = v.boolean_or("nvls", true);
      proto.nvls_efficiency = v.positive_or("nvls_efficiency", kDefaultNvlsEfficiency);
      if (proto.nvls_efficiency > 1.0) v.fail("nvls_efficiency", "must be in (0, 1]");
    }
    const auto names = expand_key(v, "name");
    if (*kind == VertexKind::gpu && first_gpu) {
      topo.set_capacity_where(v.where());
      first_gpu = false;
    }
    for (const auto& name : names) {
      TopoVertex tv = proto;
      tv.name = name;
      if (topo.find_vertex(name)) {
        v.fail("name", "duplicate vertex name '" + name + "' (first declared at " +
                           topo.vertex(*topo.find_vertex(name)).where + ")");
      }
      topo.add_vertex(std::move(tv));
    }
  }
}

void read_links(const Config& cfg, Topology& topo) {
  for (const Config& l : cfg.tables("link")) {
    const auto a = expand_key(l, "a");
    const auto b = expand_key(l, "b");
    const BytesPerSec bw = l.bandwidth("bandwidth");
    if (!(bw.value() > 0.0)) l.fail("bandwidth", "must be > 0 (a link without bandwidth is no link)");
    const Seconds latency = l.duration("latency");
    const bool bidirectional = l.boolean_or("bidirectional", true);
    const double efficiency = l.positive_or("efficiency", 1.0);
    if (efficiency > 1.0) l.fail("efficiency", "must be in (0, 1]");
    if (a.size() != b.size() && a.size() != 1 && b.size() != 1) {
      l.fail("b", "'a' names " + std::to_string(a.size()) + " vertices and 'b' names " + std::to_string(b.size()) +
                      "; they must name as many or one of them a single vertex");
    }
    const std::size_t n = std::max(a.size(), b.size());
    auto id_of = [&](const std::string& key, const std::string& name) {
      auto id = topo.find_vertex(name);
      if (!id) l.fail(key, "unknown vertex '" + name + "' (declare it in a [[vertex]] table first)");
      return *id;
    };
    for (std::size_t i = 0; i < n; ++i) {
      const int va = id_of("a", a[a.size() == 1 ? 0 : i]);
      const int vb = id_of("b", b[b.size() == 1 ? 0 : i]);
      topo.add_link(va, vb, bw, latency, l.where(), bidirectional, efficiency);
    }
  }
}

// Cluster size limits: beyond them a graph of every NIC, switch and link would cost more memory and routing time
// than a serving fleet's study needs (and a larger number is most likely a typo).
constexpr std::int64_t kMaxNodes = 4096;
constexpr std::int64_t kMaxSwitches = 1024;

void read_fabric(const Config& cfg, const Topology& node, int nodes, Topology& topo) {
  const Config f = cfg.table("fabric");
  const std::string kind = f.str("kind");
  if (kind != "leaf_spine") f.fail("kind", "unknown fabric kind '" + kind + "' (valid: leaf_spine)");
  const auto leaves = f.positive_int("leaves");
  const auto spines = f.non_negative_int_or("spines", 0);
  if (leaves > kMaxSwitches) f.fail("leaves", "at most " + std::to_string(kMaxSwitches) + " leaf switches are modelled");
  if (spines > kMaxSwitches) f.fail("spines", "at most " + std::to_string(kMaxSwitches) + " spine switches are modelled");
  if (leaves > 1 && spines == 0) f.fail("spines", "must be >= 1 when there is more than one leaf");
  const bool rail = f.boolean_or("rail_optimized", true);
  // 0 = not given (defaults below); given values must be > 0.
  const double link_bw = f.has("link_bandwidth") ? f.bandwidth("link_bandwidth").value() : 0.0;
  if (f.has("link_bandwidth") && !(link_bw > 0.0)) f.fail("link_bandwidth", "must be > 0");
  const Seconds link_latency = f.duration("link_latency");
  const double up_bw = f.has("uplink_bandwidth") ? f.bandwidth("uplink_bandwidth").value() : 0.0;
  if (f.has("uplink_bandwidth") && !(up_bw > 0.0)) f.fail("uplink_bandwidth", "must be > 0");
  const Seconds up_latency = f.duration_or("uplink_latency", link_latency);

  std::vector<int> node_nics;
  for (std::size_t v = 0; v < node.vertices().size(); ++v) {
    if (node.vertices()[v].kind == VertexKind::nic) node_nics.push_back(static_cast<int>(v));
  }
  if (node_nics.empty()) cfg.fail("node", "node topology '" + node.name() + "' has no nic vertices to attach");

  const std::string where = f.where();
  std::vector<int> leaf_ids;
  for (std::int64_t i = 0; i < leaves; ++i) {
    leaf_ids.push_back(
        topo.add_vertex(TopoVertex{"leaf" + std::to_string(i), VertexKind::net_switch, 0, where, {}, false, 0}));
  }
  // The spine switches are one vertex: a leaf's links to all spines become one link with their summed
  // bandwidth, which is what ideal ECMP / adaptive routing spreading over the spines gives (routing picks a
  // single path, so separate spine vertices would put every flow on the first spine).
  const int spine =
      spines > 0 ? topo.add_vertex(TopoVertex{"spine", VertexKind::net_switch, 0, where, {}, false, 0}) : -1;
  const int per_node = static_cast<int>(node.vertices().size());
  std::vector<double> leaf_down(static_cast<std::size_t>(leaves), 0.0);
  for (int k = 0; k < nodes; ++k) {
    for (std::size_t i = 0; i < node_nics.size(); ++i) {
      const int nic = k * per_node + node_nics[i];
      const std::size_t leaf =
          rail ? i % static_cast<std::size_t>(leaves) : static_cast<std::size_t>(k) % static_cast<std::size_t>(leaves);
      const BytesPerSec bw = link_bw > 0.0 ? BytesPerSec{link_bw} : topo.vertex(nic).nic_bandwidth;
      topo.add_link(nic, leaf_ids[leaf], bw, link_latency, where);
      leaf_down[leaf] += bw.value();
    }
  }
  for (std::size_t l = 0; spine >= 0 && l < leaf_ids.size(); ++l) {
    // Non-blocking by default: a leaf's uplinks together carry as much as its downlinks.
    const double bw = up_bw > 0.0 ? up_bw * static_cast<double>(spines) : leaf_down[l];
    if (bw > 0.0) topo.add_link(leaf_ids[l], spine, BytesPerSec{bw}, up_latency, where);
  }
}

Topology read_cluster(const Config& cfg, Topology topo, const std::string& catalog_dir) {
  const std::string node_name = cfg.str("node");
  if (catalog_dir.empty()) cfg.fail("node", "a cluster description needs a catalogue directory to find its node");
  // A relative path is relative to the cluster file's directory, like a catalogue name.
  const bool is_path = node_name.find('/') != std::string::npos || node_name.ends_with(".toml");
  const std::filesystem::path node_path(node_name);
  const Topology node = load_topology(
      is_path && node_path.is_relative() ? (std::filesystem::path(catalog_dir) / node_path).string() : node_name,
      catalog_dir);
  if (node.node_count() > 1) cfg.fail("node", "'" + node_name + "' is a cluster; name a single-machine topology");
  const auto nodes = cfg.positive_int("nodes");
  if (nodes > kMaxNodes) cfg.fail("nodes", "at most " + std::to_string(kMaxNodes) + " nodes are modelled");
  topo.set_capacity_where(cfg.where("nodes"));
  topo.set_step_latency(node.step_latency());
  const int per_node = static_cast<int>(node.vertices().size());
  for (std::int64_t k = 0; k < nodes; ++k) {
    for (const auto& v : node.vertices()) {
      TopoVertex c = v;
      // Appended piecewise: GCC 12 -O3 warns (-Wrestrict, a false positive) on "n" + std::to_string(k).
      std::string name = "n";
      name += std::to_string(k);
      name += '.';
      name += v.name;
      c.name = std::move(name);
      c.node = static_cast<int>(k);
      topo.add_vertex(std::move(c));
    }
    for (const auto& l : node.links()) {
      const int off = static_cast<int>(k) * per_node;
      topo.add_link(l.from + off, l.to + off, l.bandwidth, l.latency, l.where, /*bidirectional=*/false, l.efficiency);
    }
  }
  if (cfg.has("fabric")) {
    read_fabric(cfg, node, static_cast<int>(nodes), topo);
  } else if (nodes > 1) {
    cfg.fail("nodes", "a cluster of several nodes needs a [fabric] table");
  }
  return topo;
}

// The topology files being read, outermost first, as (canonical path, path as named): a cluster whose `node`
// names one of them is an include cycle, which would otherwise recurse until the stack overflows.
thread_local std::vector<std::pair<std::string, std::string>> t_loading;
// Deepest nesting of topology files (a cluster names a node; deeper chains are mistakes).
constexpr std::size_t kMaxTopologyDepth = 8;

std::string chain_text(const std::string& last) {
  std::string s;
  for (const auto& [canonical, named] : t_loading) s += named + " -> ";
  return s + last;
}

// Enters a topology file for the time of its reading; throws InputError naming the chain for a cycle or a
// chain deeper than kMaxTopologyDepth.
class LoadingFile {
 public:
  explicit LoadingFile(const std::filesystem::path& path) {
    std::error_code ec;
    std::filesystem::path canonical = std::filesystem::weakly_canonical(path, ec);
    if (ec) canonical = path.lexically_normal();
    for (const auto& entry : t_loading) {
      if (entry.first == canonical.string()) {
        throw InputError(path.string() + ": topology include cycle: " + chain_text(path.string()) +
                         " (a cluster's `node` must name a single-machine topology)");
      }
    }
    if (t_loading.size() >= kMaxTopologyDepth) {
      throw InputError(path.string() + ": topology files nest deeper than " + std::to_string(kMaxTopologyDepth) +
                       " levels: " + chain_text(path.string()));
    }
    t_loading.emplace_back(canonical.string(), path.string());
  }
  LoadingFile(const LoadingFile&) = delete;
  LoadingFile& operator=(const LoadingFile&) = delete;
  ~LoadingFile() { t_loading.pop_back(); }
};

}  // namespace

Topology Topology::from_config(const Config& cfg, const std::string& catalog_dir) {
  Topology topo(cfg.str("name"), cfg.where());
  (void)cfg.str_or("description", "");  // free text for people
  if (cfg.has("node")) {
    topo = read_cluster(cfg, std::move(topo), catalog_dir);
  } else {
    read_vertices(cfg, topo);
    if (topo.gpu_count() == 0) cfg.fail("vertex", "the topology declares no vertex of kind \"gpu\"");
    if (cfg.has("link")) read_links(cfg, topo);
  }
  if (cfg.has("step_latency")) topo.set_step_latency(cfg.duration("step_latency"));
  cfg.check_unknown();
  return topo;
}

Topology load_topology(const std::string& name_or_path, const std::string& catalog_dir) {
  namespace fs = std::filesystem;
  const bool is_path =
      name_or_path.find('/') != std::string::npos || (name_or_path.size() > 5 && name_or_path.ends_with(".toml"));
  const fs::path path = is_path ? fs::path(name_or_path) : fs::path(catalog_dir) / (name_or_path + ".toml");
  std::error_code ec;
  if (fs::symlink_status(path, ec).type() == fs::file_type::not_found) {
    if (is_path) throw InputError(name_or_path + ": topology file not found");
    std::string names;
    for (const auto& n : topology_catalog_names(catalog_dir)) names += (names.empty() ? "" : ", ") + n;
    throw InputError("unknown topology '" + name_or_path + "' (catalogue " + catalog_dir + ": " +
                     (names.empty() ? std::string("empty") : names) + ")");
  }
  // Regular files only (a directory or FIFO is refused with its reason), and no file inside its own chain.
  check_input_file(path.string(), "topology file", kMaxDocumentBytes);
  const LoadingFile entered(path);
  const Config cfg = Config::from_file(path.string());
  const std::string dir = path.has_parent_path() ? path.parent_path().string() : std::string(".");
  return Topology::from_config(cfg, dir);
}

std::vector<std::string> topology_catalog_names(const std::string& catalog_dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(catalog_dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".toml") out.push_back(e.path().stem().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace servesim
