// Reading JSON documents (model config.json, profile.json, measured runs) so that every error of the JSON
// library (syntax errors, and numbers such as 1e999 that overflow a double) is an InputError naming the file,
// line and column.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace servesim {

// Parses `text`; any nlohmann::json exception becomes InputError "SOURCE:LINE:COL: not valid JSON: ..." (or
// "SOURCE:LINE:COL: number overflow parsing '1e999' ..."). Lines and columns are 1-based; `first_line` is the line
// number of the first line of `text` (for one line of a JSONL file).
[[nodiscard]] nlohmann::json parse_json_text(std::string_view text, const std::string& source,
                                             std::size_t first_line = 1);

// read_input_file() (regular files only, at most kMaxDocumentBytes = 256 MiB; models/common/input_file.h) then
// parse_json_text(). `what` names the input in messages ("model config", "profile.json").
[[nodiscard]] nlohmann::json parse_json_file(const std::string& path, const std::string& what = "JSON file");

// The library's message without its "[json.exception.X.N] " prefix and "parse error at line L, column C: ".
[[nodiscard]] std::string json_error_message(const nlohmann::json::exception& e);

}  // namespace servesim
