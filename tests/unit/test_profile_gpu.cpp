// A calibration profile stands for the GPU it was measured on only: GPU names matched across the driver's and the
// catalog's spellings, and a scenario whose [hardware] gpu is another GPU than its profile's is refused (exit 2,
// one line naming both) unless it says profile_gpu_mismatch = "allow".
#include <catch2/catch.hpp>

#include "h200.h"
#include "helpers.h"
#include "models/hw/gpu.h"
#include "models/hw/profile.h"

using namespace servesim;

namespace {

Config catalog() { return Config::from_file(test::scenario_path("hardware/gpus.toml")); }

GpuSpec catalog_gpu(const std::string& name) { return load_gpu(catalog(), name, "test"); }

// Llama-3-8B on `gpu` with the shipped H200 profile; `extra` goes into [hardware] after the profile (line 6 on).
std::string scenario(const std::filesystem::path& dir, const std::string& gpu, const std::string& extra = "") {
  return test::write_file(dir / "s.toml", "[model]\n"
                                          "config = \"llama-3-8b\"\n"
                                          "[hardware]\n"
                                          "gpu = \"" + gpu + "\"\n"
                                          "profile = \"calibrate/data/h200\"\n" +
                                              extra +
                                              "[workload]\nnum_requests = 2\n"
                                              "[workload.arrival]\nimpl = \"poisson\"\nrate = 5.0\n"
                                              "[workload.prompt_tokens]\nimpl = \"fixed\"\nvalue = 100\n"
                                              "[workload.output_tokens]\nimpl = \"fixed\"\nvalue = 4\n");
}

}  // namespace

TEST_CASE("GPU names are matched across the driver's and the catalog's spellings", "[profile-gpu]") {
  CHECK(normalise_gpu_name("NVIDIA H100 PCIe") == "h100 pcie");
  CHECK(normalise_gpu_name("h100-pcie") == "h100 pcie");
  CHECK(normalise_gpu_name("  NVIDIA   A100-SXM4-80GB ") == "a100 sxm4 80gb");
  CHECK(normalise_gpu_name("NVIDIA H200") == "h200");

  const Config c = catalog();
  CHECK(catalog_gpu_for_device(c, "NVIDIA H200") == "h200");
  CHECK(catalog_gpu_for_device(c, "NVIDIA H100 80GB HBM3") == "h100-sxm");  // the catalog's device_name
  CHECK(catalog_gpu_for_device(c, "NVIDIA H100 PCIe") == "h100-pcie");
  CHECK(catalog_gpu_for_device(c, "NVIDIA A100-SXM4-80GB") == "a100-80g");
  CHECK(catalog_gpu_for_device(c, "NVIDIA L40S") == "l40s");
  CHECK(catalog_gpu_for_device(c, "h200") == "h200");  // a profile may name the catalog key itself
  // Other products are not matched by a prefix: an H200 NVL is not the catalog's H200 SXM.
  CHECK(catalog_gpu_for_device(c, "NVIDIA H200 NVL").empty());
  CHECK(catalog_gpu_for_device(c, "NVIDIA H100").empty());
  CHECK(catalog_gpu_for_device(c, "").empty());

  CHECK(gpu_matches_device(catalog_gpu("h100-sxm"), "NVIDIA H100 80GB HBM3"));
  CHECK_FALSE(gpu_matches_device(catalog_gpu("h100-sxm"), "NVIDIA H100 PCIe"));
  CHECK_FALSE(gpu_matches_device(catalog_gpu("h100-sxm"), "NVIDIA H200"));
}

TEST_CASE("the shipped H200 profile stands for the catalog's h200 only", "[profile-gpu]") {
  const auto p = test::h200_profile();
  CHECK(p->gpu_name() == "NVIDIA H200");
  CHECK(profile_gpu_mismatch(*p, test::h200(), "calibrate/data/h200").empty());
  CHECK(profile_gpu_mismatch(*p, catalog_gpu("h100-sxm"), "calibrate/data/h200") ==
        "profile calibrate/data/h200 was measured on \"NVIDIA H200\" but hardware.gpu is \"h100-sxm\"");

  // A profile.json without "gpu" cannot be checked: that is said, not passed.
  const auto dir = test::temp_dir("nogpu");
  test::write_file(dir / "profile.json", "{\"source\": \"test\"}");
  test::write_file(dir / "gemm.csv", "op,M,N,K,dtype,median_us,min_us,max_us\nqkv,1,6144,4096,bf16,20,19,21\n");
  const auto unnamed = CalibrationProfile::load(dir.string());
  CHECK(unnamed.gpu_name().empty());
  CHECK_THAT(profile_gpu_mismatch(unnamed, test::h200(), "p"), Catch::Contains("does not name the GPU"));
}

TEST_CASE("a scenario whose GPU is not its profile's is an error naming both", "[profile-gpu][bad-input]") {
  const auto dir = test::temp_dir("profilegpu");
  const std::string path = scenario(dir, "h100-sxm");
  const auto r = test::run_cli("run " + path + " --out " + (dir / "out").string());
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(test::count_lines(r.output) == 1);
  CHECK(r.output == "servesim: error: " + path +
                        ":5: hardware.profile: profile calibrate/data/h200 was measured on \"NVIDIA H200\" but "
                        "hardware.gpu is \"h100-sxm\" (set hardware.profile_gpu_mismatch = \"allow\" to use it "
                        "anyway)\n");
  CHECK_FALSE(std::filesystem::exists(dir / "out"));
}

TEST_CASE("profile_gpu_mismatch allow uses another GPU's profile, and other values are refused",
          "[profile-gpu][bad-input]") {
  const auto dir = test::temp_dir("profilegpuallow");
  const auto allowed = test::run_cli("step " + scenario(dir, "h100-sxm", "profile_gpu_mismatch = \"allow\"\n") +
                                     " --decode 4x512 --json");
  INFO(allowed.output);
  CHECK(allowed.code == 0);
  CHECK(allowed.output.find("\"total_ms\"") != std::string::npos);

  // The matching GPU needs nothing; "error" is the default, also accepted when spelt out.
  CHECK(test::run_cli("step " + scenario(dir, "h200") + " --decode 4x512 --json").code == 0);
  CHECK(test::run_cli("step " + scenario(dir, "h200", "profile_gpu_mismatch = \"error\"\n") + " --decode 4x512").code == 0);
  CHECK(test::run_cli("step " + scenario(dir, "h100-sxm", "profile_gpu_mismatch = \"error\"\n") + " --decode 4x512").code == 2);

  const auto bad = test::run_cli("step " + scenario(dir, "h200", "profile_gpu_mismatch = \"warn\"\n") + " --decode 4x512");
  INFO(bad.output);
  CHECK(bad.code == 2);
  CHECK(test::count_lines(bad.output) == 1);
  CHECK(bad.output.find("s.toml:6") != std::string::npos);
  CHECK(bad.output.find("hardware.profile_gpu_mismatch") != std::string::npos);
  CHECK(bad.output.find("valid: allow, error") != std::string::npos);
}
