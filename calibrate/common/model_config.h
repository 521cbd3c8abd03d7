// model_config.h — reads the few integer fields of a Hugging Face config.json that the calibration
// programs need (dense Llama-style decoder), with a tiny hand-written scanner instead of a JSON library.
//
// For each key the FIRST occurrence of `"key"` followed by `:` and an integer is used. A `null` value
// or a missing key counts as absent. Configs that nest the language model (e.g. "text_config") are
// not handled specially: pass the language model's own config.json.
//
// Per-rank GEMM shapes for tensor-parallel degree t (Y = X·Wᵀ, X[M,K], W[N,K]):
//   qkv     N = (heads/t + 2·kv_heads_per_rank)·head_dim   K = hidden
//   o       N = hidden                                      K = heads·head_dim/t
//   gate_up N = 2·intermediate/t                            K = hidden
//   down    N = hidden                                      K = intermediate/t
//   lm_head N = ceil(vocab/t)                               K = hidden
// kv_heads_per_rank = kv_heads/t, or 1 when kv_heads < t (KV heads are replicated across ranks).
//
// Mixture-of-experts layers (load_moe_config, used by servesim-grouped-gemm-bench): the routed expert
// count is the first of num_local_experts (Mixtral, gpt-oss), num_experts (Qwen-MoE), n_routed_experts
// (DeepSeek) present; the expert FFN width is moe_intermediate_size, else intermediate_size. Per expert
// (Y = X·Wᵀ): gate_up N = 2·width, K = hidden; down N = hidden, K = width.
#pragma once

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

namespace calib {

struct ModelConfig {
  long hidden = 0, intermediate = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
};

// Returns true and sets *out when `"key": <integer>` occurs in text.
inline bool scan_int_field(const std::string& text, const std::string& key, long* out) {
  const std::string quoted = "\"" + key + "\"";
  size_t pos = 0;
  while ((pos = text.find(quoted, pos)) != std::string::npos) {
    size_t p = pos + quoted.size();
    pos = p;
    while (p < text.size() && std::isspace(static_cast<unsigned char>(text[p]))) ++p;
    if (p >= text.size() || text[p] != ':') continue;  // the key text appeared as a value
    ++p;
    while (p < text.size() && std::isspace(static_cast<unsigned char>(text[p]))) ++p;
    if (p < text.size() && (std::isdigit(static_cast<unsigned char>(text[p])) || text[p] == '-')) {
      *out = std::strtol(text.c_str() + p, nullptr, 10);
      return true;
    }
    return false;  // null, string, object...: absent
  }
  return false;
}

// Returns the whole text of a config.json, or exits with status 2 when it cannot be read.
inline std::string read_config_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "error: cannot read model config %s\n", path.c_str());
    std::exit(2);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline ModelConfig load_model_config(const std::string& path) {
  const std::string text = read_config_text(path);
  ModelConfig c;
  auto need = [&](const char* key, long* dst) {
    if (!scan_int_field(text, key, dst) || *dst <= 0) {
      std::fprintf(stderr, "error: %s: missing or non-positive integer field \"%s\"\n", path.c_str(), key);
      std::exit(2);
    }
  };
  need("hidden_size", &c.hidden);
  need("intermediate_size", &c.intermediate);
  need("num_attention_heads", &c.heads);
  need("vocab_size", &c.vocab);
  if (!scan_int_field(text, "num_key_value_heads", &c.kv_heads) || c.kv_heads <= 0) c.kv_heads = c.heads;
  if (!scan_int_field(text, "head_dim", &c.head_dim) || c.head_dim <= 0) c.head_dim = c.hidden / c.heads;
  return c;
}

struct GemmShape {
  std::string op;
  long N = 0, K = 0;
};

inline std::vector<GemmShape> tp_gemm_shapes(const ModelConfig& c, long tp) {
  auto fail = [&](const char* what) {
    std::fprintf(stderr, "error: tp=%ld does not divide %s\n", tp, what);
    std::exit(2);
  };
  if (tp < 1) fail("anything (tp must be >= 1)");
  if (c.heads % tp) fail("num_attention_heads");
  if (c.intermediate % tp) fail("intermediate_size");
  if (c.kv_heads >= tp && c.kv_heads % tp) fail("num_key_value_heads");
  const long kv_per_rank = c.kv_heads >= tp ? c.kv_heads / tp : 1;
  const long q_per_rank = c.heads / tp;
  return {
      {"qkv", (q_per_rank + 2 * kv_per_rank) * c.head_dim, c.hidden},
      {"o", c.hidden, q_per_rank * c.head_dim},
      {"gate_up", 2 * c.intermediate / tp, c.hidden},
      {"down", c.hidden, c.intermediate / tp},
      {"lm_head", (c.vocab + tp - 1) / tp, c.hidden},
  };
}

struct MoeConfig {
  long hidden = 0, experts = 0, width = 0;  // width: one expert's FFN intermediate size
  std::string experts_key, width_key;       // the config.json keys the values came from
};

inline MoeConfig load_moe_config(const std::string& path) {
  const std::string text = read_config_text(path);
  MoeConfig c;
  auto first_positive = [&](std::initializer_list<const char*> keys, long* dst, std::string* key_used) {
    for (const char* key : keys) {
      long v = 0;
      if (scan_int_field(text, key, &v) && v > 0) {
        *dst = v;
        *key_used = key;
        return true;
      }
    }
    return false;
  };
  std::string unused;
  if (!first_positive({"hidden_size"}, &c.hidden, &unused)) {
    std::fprintf(stderr, "error: %s: missing or non-positive integer field \"hidden_size\"\n", path.c_str());
    std::exit(2);
  }
  if (!first_positive({"num_local_experts", "num_experts", "n_routed_experts"}, &c.experts, &c.experts_key)) {
    std::fprintf(stderr,
                 "error: %s: no expert count (num_local_experts, num_experts or n_routed_experts): not an MoE model\n",
                 path.c_str());
    std::exit(2);
  }
  if (!first_positive({"moe_intermediate_size", "intermediate_size"}, &c.width, &c.width_key)) {
    std::fprintf(stderr, "error: %s: missing or non-positive moe_intermediate_size and intermediate_size\n",
                 path.c_str());
    std::exit(2);
  }
  return c;
}

}  // namespace calib
