#include "mmlearn/heads/connector.h"

#include <torch/torch.h>

#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/core/precision.h"

namespace mmlearn {

ConnectorKind parse_connector(const std::string& name) {
  if (name == "cross-attention") return ConnectorKind::cross_attention;
  if (name == "prefix") return ConnectorKind::prefix;
  if (name == "queries") return ConnectorKind::queries;
  throw UsageError(str_cat("connector \"", name, "\": expected cross-attention, prefix or queries"));
}

std::string connector_name(ConnectorKind kind) {
  switch (kind) {
    case ConnectorKind::cross_attention:
      return "cross-attention";
    case ConnectorKind::prefix:
      return "prefix";
    case ConnectorKind::queries:
      return "queries";
  }
  return "?";
}

nlohmann::json to_json(const ConnectorConfig& c) {
  nlohmann::json j = {
      {"kind", connector_name(c.kind)}, {"encoder_width", c.encoder_width}, {"width", c.width}};
  if (c.kind == ConnectorKind::queries) {
    j["queries"] = c.queries;
    j["query_layers"] = c.query_layers;
    j["heads"] = c.heads;
  }
  return j;
}

ConnectorConfig connector_config_from_json(const nlohmann::json& j, const std::string& where) {
  check(j.is_object(), where, ": the connector's config must be a JSON object");
  check_known_fields(j, {"kind", "encoder_width", "width", "queries", "query_layers", "heads"}, where,
                     "connector ");
  ConnectorConfig c;
  std::string kind = connector_name(c.kind);
  read_field(j, "kind", kind, where);
  try {
    c.kind = parse_connector(kind);
  } catch (const UsageError& e) {
    throw Error(str_cat(where, ": ", e.what()));
  }
  read_field(j, "encoder_width", c.encoder_width, where);
  read_field(j, "width", c.width, where);
  read_field(j, "queries", c.queries, where);
  read_field(j, "query_layers", c.query_layers, where);
  read_field(j, "heads", c.heads, where);
  for (const auto& [name, value] : {std::pair{"encoder_width", c.encoder_width},
                                    {"width", c.width},
                                    {"queries", c.queries},
                                    {"query_layers", c.query_layers},
                                    {"heads", c.heads}})
    check(value >= 1 && value <= 65536, where, ": connector field \"", name, "\" must be in [1, 65536] (got ",
          value, ")");
  check(c.kind != ConnectorKind::queries || c.width % c.heads == 0, where, ": connector width ", c.width,
        " is not divisible by its ", c.heads, " heads");
  return c;
}

ConnectorImpl::ConnectorImpl(const ConnectorConfig& c) : config(c) {
  ln = register_module("ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.encoder_width})));
  proj = register_module("proj", torch::nn::Linear(c.encoder_width, c.width));
  if (c.kind != ConnectorKind::cross_attention)
    proj_2 = register_module("proj_2", torch::nn::Linear(c.width, c.width));
  if (c.kind == ConnectorKind::queries) {
    query_tokens = register_parameter("query_tokens", torch::randn({1, c.queries, c.width}) * 0.02);
    query_blocks = register_module("query_blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.query_layers; ++i)
      query_blocks->push_back(DecoderBlock(c.width, c.heads, 4.0, true));
    ln_queries = register_module("ln_queries", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width})));
  }
}

int64_t ConnectorImpl::prefix_length(int64_t encoder_tokens) const {
  switch (config.kind) {
    case ConnectorKind::cross_attention:
      return 0;
    case ConnectorKind::prefix:
      return encoder_tokens;
    case ConnectorKind::queries:
      return config.queries;
  }
  return 0;
}

Conditioning ConnectorImpl::forward(const torch::Tensor& tokens, const torch::Tensor& mask) {
  // An encoder's tokens may arrive in bf16 (autocast convolutions); LayerNorm takes them in fp32.
  auto x = proj(ln(full_precision(tokens)));
  switch (config.kind) {
    case ConnectorKind::cross_attention:
      return {.memory = x, .memory_mask = mask};
    case ConnectorKind::prefix:
      // LLaVA-1.5's projector: Linear, GELU, Linear. Padded tokens would be read as words: zero them.
      x = proj_2(torch::gelu(x));
      if (mask.defined()) x = x * mask.unsqueeze(-1).to(x.scalar_type());
      return {.prefix = x};
    case ConnectorKind::queries: {
      auto q = query_tokens.expand({tokens.size(0), -1, -1});
      for (const auto& block : *query_blocks) q = block->as<DecoderBlock>()->forward(q, x, mask, {});
      return {.prefix = proj_2(ln_queries(q))};  // BLIP-2's language projection
    }
  }
  return {};
}

}  // namespace mmlearn
