// Hugging Face's clean-up of decoded text (clean_up_tokenization): tokenizers that put a space between every
// token write "a star , a circle ." and "don 't"; this takes out the spaces before . ? ! , and the English
// contractions, as transformers' decode does by default.
//
//   mmlearn::text::clean_up_tokenization("a red star , a circle .");   // "a red star, a circle."
#pragma once

#include <string>

namespace mmlearn::text {

std::string clean_up_tokenization(std::string text);

}  // namespace mmlearn::text
