// Opening the files servesim reads: scenarios and catalogs (TOML), model configs and profile.json (JSON), traces,
// measured runs, profile CSVs, collectives CSVs and nccl-tests logs.
//
// Every reader opens its file here, so that every input gets the same checks and the same one-line messages:
//   - regular files only: a directory, FIFO, socket or device (/dev/zero) is refused before anything is read,
//     so a FIFO never blocks and /dev/zero never fills memory;
//   - a size cap: kMaxLineFileBytes (4 GiB) for line-oriented inputs (traces, measured runs, CSV profiles,
//     nccl-tests logs), kMaxDocumentBytes (256 MiB) for whole-file documents (TOML, JSON);
//   - the real reason in the message: "PATH: cannot open WHAT: REASON", where REASON is "not found",
//     "is a directory", "is not a regular file (a FIFO)", the system's text (errno, e.g. "Permission denied"),
//     or "is larger than the 4 GiB limit for ...".
#pragma once
#include <cstdint>
#include <fstream>
#include <string>

namespace servesim {

// Largest line-oriented input (traces, measured runs, CSV profiles, nccl-tests logs), in bytes: 4 GiB.
inline constexpr std::uint64_t kMaxLineFileBytes = std::uint64_t{4} << 30;
// Largest whole-file document (TOML scenarios, catalogs, calibration and topology files; JSON configs), in
// bytes: 256 MiB.
inline constexpr std::uint64_t kMaxDocumentBytes = std::uint64_t{256} << 20;

// Checks that `path` names a regular file this process can open for reading, of at most `max_bytes` bytes,
// without blocking (a FIFO is refused, not opened for reading). `what` names the input in messages ("trace",
// "measured run"). Throws InputFileError (an InputError with file() = PATH) "PATH: cannot open WHAT: REASON".
void check_input_file(const std::string& path, const std::string& what, std::uint64_t max_bytes = kMaxLineFileBytes);

// check_input_file(), then a binary input stream on the file (for line-by-line readers), positioned after a
// UTF-8 byte-order mark if the file starts with one (TOML and JSON accept a BOM; CSV and text inputs do too).
// Same errors.
[[nodiscard]] std::ifstream open_input_file(const std::string& path, const std::string& what,
                                            std::uint64_t max_bytes = kMaxLineFileBytes);

// The whole content of the file, after the checks of check_input_file() (made on the open file itself, so a
// file swapped for a FIFO meanwhile is refused too). Same errors, and a read error names its reason.
[[nodiscard]] std::string read_input_file(const std::string& path, const std::string& what,
                                          std::uint64_t max_bytes = kMaxDocumentBytes);

}  // namespace servesim
