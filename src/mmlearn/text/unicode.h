// UTF-8 decoding and the Unicode character classes that CLIP's and BERT's pre-tokenizers need, without ICU.
//
// Decoding never fails: each ill-formed byte sequence becomes one U+FFFD per maximal ill-formed subpart,
// which is what Python's bytes.decode("utf-8", errors="replace") produces, so byte-level round trips match
// the Python reference. Classes follow Python's `regex` module: is_letter = \p{L}, is_number = \p{N},
// is_space = \s (the Unicode White_Space property); BERT's classes follow Python's unicodedata, as Hugging
// Face's BasicTokenizer asks it. The tables are generated from Python's unicodedata by
// tests/fixtures/gen_unicode_tables.py.
//
//   std::string_view s = "Caf\xC3\xA9 42";
//   for (size_t pos = 0; pos < s.size();) {
//     char32_t cp = mmlearn::text::next_codepoint(s, pos);
//     if (mmlearn::text::is_letter(cp)) ...
//   }
//   std::string low = mmlearn::text::lower_utf8("ÉTÉ");  // "été", as Python's str.lower()
#pragma once

#include <string>
#include <string_view>

namespace mmlearn::text {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Decodes the codepoint starting at s[pos] and advances pos past it (by at least one byte). Ill-formed
// input (stray continuation bytes, overlong forms, surrogates, values above U+10FFFF, truncated sequences)
// yields kReplacementChar.
char32_t next_codepoint(std::string_view s, size_t& pos);

std::u32string decode_utf8(std::string_view s);

// Appends cp as UTF-8; surrogates and values above U+10FFFF are written as U+FFFD.
void append_utf8(std::string& out, char32_t cp);
std::string encode_utf8(std::u32string_view codepoints);

bool is_letter(char32_t cp);  // \p{L}: Lu Ll Lt Lm Lo
bool is_number(char32_t cp);  // \p{N}: Nd Nl No
bool is_space(char32_t cp);   // \s of Python's regex module (not str.isspace, which adds U+001C..U+001F)

// Python's general categories: C* (control, format, surrogate, private use, unassigned), P*, Zs, Mn.
bool is_other_category(char32_t cp);
bool is_punctuation_category(char32_t cp);
bool is_space_separator(char32_t cp);
bool is_nonspacing_mark(char32_t cp);

// unicodedata.normalize("NFD", text) without its nonspacing marks (category Mn): BERT's accent stripping
// ("Café" -> "Cafe"). Codepoints are decomposed one by one; the canonical reordering NFD also does moves only
// combining marks, which are all dropped but for a few spacing ones (none in ordinary text).
std::u32string strip_accents(std::u32string_view text);

// Python's one-codepoint lower-casing of cp (full Unicode table, generated); cp itself when it has none.
char32_t to_lower(char32_t cp);

// Python's str.lower(): to_lower per codepoint plus its two non-simple cases, U+0130 -> "i\u0307" and
// final sigma (see unicode.cpp for how far the latter is followed).
std::u32string lower(std::u32string_view text);
std::string lower_utf8(std::string_view text);
// `text` without leading and trailing ASCII whitespace (space, \t, \n, \r, \f, \v).
std::string strip_ascii_space(std::string_view text);

}  // namespace mmlearn::text
