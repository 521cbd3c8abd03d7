// Catalog files loaded once per process: GPU catalogs (scenarios/hardware/gpus.toml or [hardware] catalog), model
// configs (HF config.json) and topologies (scenarios/topologies/*.toml or a path). A scenario loader asks here
// instead of reading the files itself, so that a sweep or plan that loads thousands of scenarios (in a thread
// pool) reads and parses each catalog file once.
//
// Keys: the file's canonical path (symbolic links and "..", resolved) together with the path as it was named, and
// for a model config its ignore_config_keys. The spelled path is part of the key because what is loaded depends on
// it: a model is named after its file (or its folder, for a "config.json"), and error messages name the file as
// given; every scenario of one sweep names its catalogs alike, so they share one entry.
// Freshness: an entry records the file's device, inode, size and modification time when it was read; a lookup
// that finds them changed reads the file again (a test or a user rewriting a file between two loads in one
// process sees the new content; a change within the file system's timestamp granularity that keeps the size is
// not noticed, nor a change to a file a topology includes).
// Failures are not cached: a file that fails to load throws its InputError on every lookup (each one reading it).
// Thread safety: every function may be called from any thread; two threads asking for the same file at once
// wait for one read.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "models/arch/model_arch.h"
#include "models/common/config.h"
#include "models/hw/gpu.h"
#include "models/net/topology.h"

namespace servesim {

// A parsed GPU catalog (a TOML file of [gpu-name] tables).
class GpuCatalog {
 public:
  explicit GpuCatalog(Config doc) : doc_(std::move(doc)) {}
  // The GPU `name` (load_gpu, models/hw/gpu.h), read once per name; `key_where` ("file:line: hardware.gpu")
  // prefixes the unknown-name error, which lists the valid names. Errors of the catalog's entries name the
  // catalog's file:line.
  [[nodiscard]] GpuSpec gpu(const std::string& name, const std::string& key_where) const;

 private:
  mutable std::mutex mutex_;  // Config records the keys it reads: one reader at a time
  Config doc_;
  mutable std::map<std::string, GpuSpec> loaded_;
};

class Catalogs {
 public:
  // The GPU catalog at `path` (Config::from_file's errors: missing, unreadable, not TOML).
  [[nodiscard]] std::shared_ptr<const GpuCatalog> gpu_catalog(const std::string& path);
  // The model config at `path` with `ignore_config_keys` (ModelArch::from_hf_config and its errors).
  [[nodiscard]] std::shared_ptr<const ModelArch> model(const std::string& path,
                                                       const std::vector<std::string>& ignore_config_keys);
  // The topology file at `path` (an existing file; load_topology(path, catalog_dir) and its errors).
  [[nodiscard]] std::shared_ptr<const Topology> topology(const std::string& path, const std::string& catalog_dir);

  // Files read so far (every load of a catalog, model config or topology file; a cached lookup reads nothing).
  [[nodiscard]] std::int64_t reads() const { return reads_.load(); }

 private:
  // What identifies one version of a file: device, inode, size, modification time (ns).
  struct Stamp {
    std::uint64_t dev = 0, ino = 0;
    std::int64_t size = -1, mtime_ns = 0;
    bool operator==(const Stamp&) const = default;
  };
  struct Entry {
    std::mutex mutex;  // held while the file is read
    Stamp stamp;
    std::shared_ptr<const void> value;
  };
  // The entry of (path, extra): cached when the file is unchanged, else `load()` (counted), cached.
  std::shared_ptr<const void> get(const std::string& kind, const std::string& path, const std::string& extra,
                                  const std::function<std::shared_ptr<const void>()>& load);

  std::mutex mutex_;  // guards entries_
  std::map<std::string, std::shared_ptr<Entry>> entries_;
  std::atomic<std::int64_t> reads_{0};
};

// The process's catalogs (what every ScenarioLoader uses).
[[nodiscard]] Catalogs& catalogs();

}  // namespace servesim
