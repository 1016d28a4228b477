#include "mmlearn/text/unicode.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace mmlearn::text {
namespace {

struct CodepointRange {
  char32_t first, last;
};

// Every stride-th codepoint in [first, last] lower-cases to itself + delta.
struct LowerRun {
  char32_t first, last;
  int32_t stride, delta;
};

// Codepoint `cp` strips to kStrippedChars[offset .. offset + length).
struct Stripped {
  char32_t cp;
  uint32_t offset, length;
};

#include "mmlearn/text/unicode_tables.inc"

template <size_t N>
bool in_ranges(const CodepointRange (&table)[N], char32_t cp) {
  // Ranges are sorted and disjoint: the only candidate is the last range starting at or before cp.
  auto it = std::upper_bound(std::begin(table), std::end(table), cp,
                             [](char32_t c, const CodepointRange& r) { return c < r.first; });
  return it != std::begin(table) && cp <= std::prev(it)->last;
}

bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

}  // namespace

char32_t next_codepoint(std::string_view s, size_t& pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char b0 = byte(pos);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  // Length and the allowed range of the second byte per lead byte (Unicode table 3-7): the tight second-byte
  // ranges reject overlongs, surrogates and values above U+10FFFF at the first wrong byte, so a bad sequence
  // is replaced by one U+FFFD per maximal subpart, exactly as Python's "replace" error handler does.
  int length = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  char32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    ++pos;  // continuation byte without a lead, C0/C1 (always overlong) or F5..FF
    return kReplacementChar;
  }
  size_t i = pos + 1;
  for (int k = 1; k < length; ++k, ++i) {
    if (i >= s.size()) {
      pos = i;
      return kReplacementChar;
    }
    unsigned char b = byte(i);
    bool ok = k == 1 ? (b >= lo && b <= hi) : is_continuation(b);
    if (!ok) {
      pos = i;  // the offending byte starts the next codepoint
      return kReplacementChar;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  pos = i;
  return cp;
}

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) out.push_back(next_codepoint(s, pos));
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = kReplacementChar;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(std::u32string_view codepoints) {
  std::string out;
  out.reserve(codepoints.size());
  for (char32_t cp : codepoints) append_utf8(out, cp);
  return out;
}

bool is_letter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return in_ranges(kLetterRanges, cp);
}

bool is_number(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return in_ranges(kNumberRanges, cp);
}

bool is_space(char32_t cp) {
  // The White_Space property, which is what the regex module's \s matches (checked over all codepoints
  // against regex 2026.5.9); it is stable across Unicode versions, so a literal list is fine here.
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp >= 0x2000 && cp <= 0x200A) return true;
  static constexpr char32_t kOthers[] = {0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
  return std::find(std::begin(kOthers), std::end(kOthers), cp) != std::end(kOthers);
}

bool is_other_category(char32_t cp) { return cp > 0x10FFFF || in_ranges(kControlRanges, cp); }
bool is_punctuation_category(char32_t cp) { return in_ranges(kPunctuationRanges, cp); }
bool is_space_separator(char32_t cp) { return in_ranges(kSpaceSeparatorRanges, cp); }
bool is_nonspacing_mark(char32_t cp) { return in_ranges(kMarkRanges, cp); }

std::u32string strip_accents(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t cp : text) {
    if (cp >= 0xAC00 && cp <= 0xD7A3) {  // a Hangul syllable: leading, vowel and (maybe) trailing jamo
      const char32_t s = cp - 0xAC00;
      out.push_back(0x1100 + s / (21 * 28));
      out.push_back(0x1161 + (s % (21 * 28)) / 28);
      if (s % 28) out.push_back(0x11A7 + s % 28);
      continue;
    }
    auto it = std::lower_bound(std::begin(kStripped), std::end(kStripped), cp,
                               [](const Stripped& e, char32_t c) { return e.cp < c; });
    if (it != std::end(kStripped) && it->cp == cp)
      out.append(kStrippedChars + it->offset, it->length);
    else if (!is_nonspacing_mark(cp))
      out.push_back(cp);
  }
  return out;
}

char32_t to_lower(char32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
  auto it = std::upper_bound(std::begin(kLowerRuns), std::end(kLowerRuns), cp,
                             [](char32_t c, const LowerRun& r) { return c < r.first; });
  if (it == std::begin(kLowerRuns)) return cp;
  const LowerRun& run = *std::prev(it);
  if (cp > run.last || (cp - run.first) % static_cast<char32_t>(run.stride) != 0) return cp;
  return static_cast<char32_t>(static_cast<int64_t>(cp) + run.delta);
}

std::u32string lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char32_t cp = text[i];
    if (cp == 0x130) {
      // The one codepoint whose lower case is two codepoints (SpecialCasing.txt): i + combining dot above.
      out.push_back(U'i');
      out.push_back(0x307);
    } else if (cp == 0x3A3) {
      // Python applies Unicode's Final_Sigma rule: a capital sigma that ends a word becomes ς, not σ.
      // Approximation of the rule: "preceded by a letter and not followed by one"; the full rule also skips
      // case-ignorable marks in between, which only matters for rare accent-on-sigma spellings.
      bool after_letter = i > 0 && is_letter(text[i - 1]);
      bool before_letter = i + 1 < text.size() && is_letter(text[i + 1]);
      out.push_back(after_letter && !before_letter ? char32_t{0x3C2} : char32_t{0x3C3});
    } else {
      out.push_back(to_lower(cp));
    }
  }
  return out;
}

std::string lower_utf8(std::string_view text) { return encode_utf8(lower(decode_utf8(text))); }

std::string strip_ascii_space(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\n\r\f\v");
  if (first == std::string_view::npos) return "";
  return std::string(text.substr(first, text.find_last_not_of(" \t\n\r\f\v") - first + 1));
}

}  // namespace mmlearn::text
