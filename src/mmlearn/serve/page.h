// The search page served at / (serve/page.html, compiled in so that the binary is whole): a text field, an
// image and an audio drop zone (or a recording), and the results grid with scores, images shown and audio
// playable from the second its words are said. It talks only to the server that serves it.
#pragma once

#include <string>

namespace mmlearn::serve {

const std::string& search_page();

}  // namespace mmlearn::serve
