// Precompiled header: libtorch and the standard headers most files use.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>
