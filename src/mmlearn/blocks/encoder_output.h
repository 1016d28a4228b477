// What every encoder returns, whatever the modality (DESIGN.md, "Contracts between stages"):
// tokens [B, N, D], mask [B, N] (true where a token is real) and one pooled vector per example [B, D'].
#pragma once

#include <torch/types.h>

namespace mmlearn {

struct EncoderOutput {
  torch::Tensor tokens;
  torch::Tensor mask;
  torch::Tensor pooled;
};

}  // namespace mmlearn
