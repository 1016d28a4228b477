#include "mmlearn/serve/page.h"

namespace mmlearn::serve {

const std::string& search_page() {
  // page_html.inc is page.html as a raw string literal, written by CMake.
  static const std::string page =
#include "mmlearn/serve/page_html.inc"
      ;
  return page;
}

}  // namespace mmlearn::serve
