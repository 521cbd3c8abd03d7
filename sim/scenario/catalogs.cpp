#include "sim/scenario/catalogs.h"

#include <sys/stat.h>

#include <filesystem>

namespace servesim {

GpuSpec GpuCatalog::gpu(const std::string& name, const std::string& key_where) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (const auto it = loaded_.find(name); it != loaded_.end()) return it->second;
  GpuSpec g = load_gpu(doc_, name, key_where);
  loaded_.emplace(name, g);
  return g;
}

std::shared_ptr<const void> Catalogs::get(const std::string& kind, const std::string& path, const std::string& extra,
                                          const std::function<std::shared_ptr<const void>()>& load) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    // Missing or unreachable: the loader says why, with its own message (and nothing is cached).
    ++reads_;
    return load();
  }
  Stamp stamp;
  stamp.dev = static_cast<std::uint64_t>(st.st_dev);
  stamp.ino = static_cast<std::uint64_t>(st.st_ino);
  stamp.size = static_cast<std::int64_t>(st.st_size);
  stamp.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::weakly_canonical(path, ec);
  if (ec) canonical = std::filesystem::absolute(path, ec).lexically_normal();
  std::string key = kind;
  for (const std::string& part : {canonical.string(), path, extra}) key += '\0' + part;

  std::shared_ptr<Entry> entry;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    auto& slot = entries_[key];
    if (!slot) slot = std::make_shared<Entry>();
    entry = slot;
  }
  const std::lock_guard<std::mutex> lock(entry->mutex);
  if (entry->value && entry->stamp == stamp) return entry->value;
  entry->value.reset();
  ++reads_;
  auto value = load();  // throws: nothing cached
  entry->stamp = stamp;
  entry->value = value;
  return value;
}

std::shared_ptr<const GpuCatalog> Catalogs::gpu_catalog(const std::string& path) {
  return std::static_pointer_cast<const GpuCatalog>(
      get("gpu_catalog", path, "", [&] { return std::make_shared<const GpuCatalog>(Config::from_file(path)); }));
}

std::shared_ptr<const ModelArch> Catalogs::model(const std::string& path,
                                                 const std::vector<std::string>& ignore_config_keys) {
  std::string extra;
  for (const auto& k : ignore_config_keys) extra += k + '\n';
  return std::static_pointer_cast<const ModelArch>(get("model", path, extra, [&] {
    return std::make_shared<const ModelArch>(ModelArch::from_hf_config(path, ignore_config_keys));
  }));
}

std::shared_ptr<const Topology> Catalogs::topology(const std::string& path, const std::string& catalog_dir) {
  return std::static_pointer_cast<const Topology>(get("topology", path, catalog_dir, [&] {
    return std::make_shared<const Topology>(load_topology(path, catalog_dir));
  }));
}

Catalogs& catalogs() {
  static Catalogs instance;
  return instance;
}

}  // namespace servesim
