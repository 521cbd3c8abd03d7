// Replays, through the fuzz harnesses' own entry functions (tests/fuzz/fuzz_entry.h), every input that once made a
// harness fail (tests/data/fuzz-regressions/<target>/, one file per finding, kept after the fix) and every seed of
// the fuzz corpus (tests/fuzz/corpus/<target>/). A regression input must be read or refused with InputError:
// anything else escaping the reader (another exception type) fails here, and a crash or sanitizer report fails the
// suite in the sanitizer build (make test-sanitize). A seed must be read: a seed the reader refuses would start the
// fuzzer at the first error instead of deep inside the format.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "helpers.h"
#include "tests/fuzz/fuzz_entry.h"

using namespace servesim;

namespace {

namespace fs = std::filesystem;

// The files of `dir` (none when it does not exist), sorted by name so the order is the same on every machine.
std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

fuzz::Outcome replay(const fuzz::Target& t, const fs::path& file) {
  const std::string bytes = test::read_file(file);
  return t.entry(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

TEST_CASE("fuzz regressions: every saved finding is read or refused with InputError") {
  const fs::path root = fs::path(test::source_dir()) / "tests" / "data" / "fuzz-regressions";
  // Every folder there belongs to a harness (a misspelt one would never be replayed).
  for (const auto& e : fs::directory_iterator(root)) {
    INFO(e.path().string());
    CHECK(std::ranges::any_of(fuzz::targets(), [&](const fuzz::Target& t) { return e.path().filename() == t.name; }));
  }
  std::size_t replayed = 0;
  for (const auto& t : fuzz::targets()) {
    for (const auto& file : files_in(root / std::string(t.name))) {
      INFO(file.string());
      CHECK_NOTHROW(replay(t, file));
      ++replayed;
    }
  }
  CHECK(replayed > 0);
}

TEST_CASE("fuzz seed corpus: every seed is read without an input error") {
  const fs::path root = fs::path(test::source_dir()) / "tests" / "fuzz" / "corpus";
  for (const auto& t : fuzz::targets()) {
    const auto seeds = files_in(root / std::string(t.name));
    INFO(t.name);
    CHECK(!seeds.empty());
    for (const auto& file : seeds) {
      INFO(file.string());
      fuzz::Outcome outcome = fuzz::Outcome::refused;
      CHECK_NOTHROW(outcome = replay(t, file));
      CHECK(outcome == fuzz::Outcome::read);
    }
  }
}

TEST_CASE("fuzz entry: an input every reader refuses is reported as refused and not thrown") {
  const std::string garbage = "\x01\x02 not [toml] { json ,,, \n";
  const auto* data = reinterpret_cast<const std::uint8_t*>(garbage.data());
  for (const auto& t : fuzz::targets()) {
    INFO(t.name);
    fuzz::Outcome outcome = fuzz::Outcome::read;
    CHECK_NOTHROW(outcome = t.entry(data, garbage.size()));
    CHECK(outcome == fuzz::Outcome::refused);
  }
}
