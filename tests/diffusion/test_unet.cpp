// Stable Diffusion's autoencoder and UNet against a PyTorch reference of the published structure
// (tests/fixtures/sd_reference.py): the folders it writes carry diffusers' config.json fields and keys, so
// opening them checks the layout as well as the numbers. A folder mmlearn saves opens to the same outputs;
// bad configs are refused by field.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/safetensors.h"
#include "mmlearn/diffusion/autoencoder_kl.h"
#include "mmlearn/diffusion/unet.h"
#include "mmlearn/models/generator.h"

namespace mmlearn {
namespace {
namespace fs = std::filesystem;

const fs::path& sd_fixture() {
  static const fs::path dir = test::python_fixture("sd_reference.py");
  return dir;
}

// The largest difference relative to the reference's largest magnitude.
double off_from_reference(const torch::Tensor& got, const torch::Tensor& expected) {
  EXPECT_EQ(got.sizes(), expected.sizes());
  if (got.sizes() != expected.sizes()) return 1e9;
  return (got - expected).abs().max().item<double>() / expected.abs().max().item<double>();
}

class StableDiffusionParity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (sd_fixture().empty())
      GTEST_FAIL() << "tests/fixtures/sd_reference.py failed (it needs /usr/bin/python3 with torch)";
    expected = load_safetensors(sd_fixture() / "expected.safetensors");
  }
  TensorMap expected;
};

TEST_F(StableDiffusionParity, AutoencoderEncodesAndDecodesAsTheReference) {
  AutoencoderKL vae = load_autoencoder_kl(sd_fixture() / "vae");
  vae->eval();
  torch::NoGradGuard no_grad;
  const DiagonalGaussian posterior = vae->encode(expected.at("images"));
  EXPECT_LT(off_from_reference(posterior.mean, expected.at("vae_mean")), 1e-5);
  EXPECT_LT(off_from_reference(posterior.logvar, expected.at("vae_logvar")), 1e-5);
  EXPECT_LT(off_from_reference(vae->decode(expected.at("latents")), expected.at("vae_decoded")), 1e-5);
  EXPECT_EQ(vae->config.downsampling(), 4);
}

TEST_F(StableDiffusionParity, UNetPredictsAsTheReferenceAtEvenAndOddSizes) {
  UNet unet = load_unet(sd_fixture() / "unet");
  unet->eval();
  torch::NoGradGuard no_grad;
  const auto& t = expected.at("timesteps");
  const auto& context = expected.at("context");
  EXPECT_LT(
      off_from_reference(unet->forward(expected.at("unet_latents"), t, context), expected.at("unet_out")),
      1e-5);
  EXPECT_LT(off_from_reference(unet->forward(expected.at("unet_latents_odd"), t, context),
                               expected.at("unet_out_odd")),
            1e-5);
  EXPECT_LT(off_from_reference(timestep_embedding(expected.at("timestep_embedding_t"), 16, true, 0),
                               expected.at("timestep_embedding")),
            1e-6);
}

TEST_F(StableDiffusionParity, SavedFoldersOpenToTheSameModel) {
  const fs::path dir = test::temp_dir("saved");
  UNet unet = load_unet(sd_fixture() / "unet");
  AutoencoderKL vae = load_autoencoder_kl(sd_fixture() / "vae");
  save_unet(unet, dir / "unet");
  save_autoencoder_kl(vae, dir / "vae");
  UNet again = load_unet(dir / "unet");
  AutoencoderKL vae_again = load_autoencoder_kl(dir / "vae");
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(
      again->forward(expected.at("unet_latents"), expected.at("timesteps"), expected.at("context")),
      unet->forward(expected.at("unet_latents"), expected.at("timesteps"), expected.at("context"))));
  EXPECT_TRUE(torch::equal(vae_again->decode(expected.at("latents")), vae->decode(expected.at("latents"))));
  EXPECT_EQ(read_json_file(dir / "unet" / "config.json"), to_json(unet->config));
}

// Each edit of the fixture's config.json, and the words its error must hold.
TEST_F(StableDiffusionParity, BadConfigsAreRefusedByField) {
  const fs::path dir = test::temp_dir("bad");
  const nlohmann::json unet = read_json_file(sd_fixture() / "unet" / "config.json"),
                       vae = read_json_file(sd_fixture() / "vae" / "config.json");
  struct Case {
    bool is_unet;
    std::function<void(nlohmann::json&)> edit;
    std::string words;
  };
  const std::vector<Case> cases = {
      {true,
       [](auto& j) {
         j["block_out_channels"] = {16, 32, 1000000000};
       },
       "block_out_channels 1000000000"},
      {true, [](auto& j) { j["layers_per_block"] = 1000; }, "layers_per_block 1000"},
      {true,
       [](auto& j) {
         j["attention_head_dim"] = {2, 5, 4};
       },
       "not divisible by its 5 heads"},
      {true, [](auto& j) { j["norm_num_groups"] = 7; }, "not divisible by norm_num_groups 7"},
      {true,
       [](auto& j) {
         j["up_block_types"] = {"UpBlock2D", "UpBlock2D", "CrossAttnUpBlock2D"};
       },
       "must mirror down_block_types"},
      {true, [](auto& j) { j["use_linear_projection"] = true; }, "use_linear_projection"},
      {true, [](auto& j) { j["norm_eps"] = -1; }, "norm_eps"},
      {true, [](auto& j) { j["_class_name"] = "UNet2DModel"; }, "is not UNet2DConditionModel"},
      {true, [](auto& j) { j["cross_attention_dim"] = "wide"; },
       "\"cross_attention_dim\" has the wrong type"},
      {false, [](auto& j) { j["latent_channels"] = 0; }, "latent_channels 0"},
      {false, [](auto& j) { j["scaling_factor"] = nullptr; }, "\"scaling_factor\" has the wrong type"},
      {false, [](auto& j) { j["block_out_channels"] = nlohmann::json::array(); }, "1 to 6 levels"},
      {false, [](auto& j) { j["act_fn"] = "relu"; }, "act_fn \"relu\""},
  };
  int i = 0;
  for (const Case& c : cases) {
    nlohmann::json j = c.is_unet ? unet : vae;
    c.edit(j);
    const fs::path folder = dir / std::to_string(i++);
    fs::create_directories(folder);
    write_file_atomic(folder / "config.json", j.dump());
    fs::copy_file(sd_fixture() / (c.is_unet ? "unet" : "vae") / "diffusion_pytorch_model.safetensors",
                  folder / "diffusion_pytorch_model.safetensors");
    const std::string error = test::error_of([&] {
      if (c.is_unet)
        load_unet(folder);
      else
        load_autoencoder_kl(folder);
    });
    EXPECT_NE(error.find(c.words), std::string::npos) << j.dump() << "\n" << error;
    EXPECT_NE(error.find((folder / "config.json").string()), std::string::npos) << error;
  }
  // A config that matches no weights: the tensor is named.
  nlohmann::json j = unet;
  j["cross_attention_dim"] = 32;
  fs::create_directories(dir / "shape");
  write_file_atomic(dir / "shape" / "config.json", j.dump());
  fs::copy_file(sd_fixture() / "unet" / "diffusion_pytorch_model.safetensors",
                dir / "shape" / "diffusion_pytorch_model.safetensors");
  EXPECT_NE(test::error_of([&] { load_unet(dir / "shape"); }).find("attn2.to_k.weight"), std::string::npos);
}

// InstructPix2Pix starts its UNet from the text-to-image one: the source latent's channels added at zero, so
// that whatever the source, the wider UNet predicts what the narrow one did.
TEST_F(StableDiffusionParity, AnEditorsUNetStartsAsTheGeneratorsUNet) {
  UNet unet = load_unet(sd_fixture() / "unet");
  UNet wider = with_source_channels(unet);
  EXPECT_EQ(wider->config.in_channels, 2 * unet->config.in_channels);
  torch::NoGradGuard no_grad;
  const auto x = expected.at("unet_latents"), t = expected.at("timesteps"), ctx = expected.at("context");
  const auto source = torch::randn_like(x);
  EXPECT_TRUE(torch::allclose(wider->forward(torch::cat({x, source}, 1), t, ctx), unet->forward(x, t, ctx),
                              1e-6, 1e-6));
}

}  // namespace
}  // namespace mmlearn
