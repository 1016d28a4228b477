// UTF-8 decoding (ill-formed input as Python's errors="replace") and the \p{L} / \p{N} / \s classes.
#include <gtest/gtest.h>

#include "mmlearn/text/unicode.h"

namespace mmlearn::text {
namespace {

constexpr char32_t R = kReplacementChar;

TEST(UnicodeUtf8, DecodesWellFormedText) {
  EXPECT_EQ(decode_utf8("a\xC3\xA9\xE6\x9D\xB1\xF0\x9F\x90\xB1"),
            (std::u32string{U'a', 0xE9, 0x6771, 0x1F431}));
  std::string text = "caf\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x90\xB1";
  EXPECT_EQ(encode_utf8(decode_utf8(text)), text);
}

TEST(UnicodeUtf8, IterationAdvancesByCodepoint) {
  std::string_view s = "a\xC3\xA9\xF0\x9F\x90\xB1";
  size_t pos = 0;
  EXPECT_EQ(next_codepoint(s, pos), U'a');
  EXPECT_EQ(pos, 1u);
  EXPECT_EQ(next_codepoint(s, pos), char32_t{0xE9});
  EXPECT_EQ(pos, 3u);
  EXPECT_EQ(next_codepoint(s, pos), char32_t{0x1F431});
  EXPECT_EQ(pos, s.size());
}

// Expected values are Python's bytes.decode("utf-8", errors="replace"): one U+FFFD per maximal subpart.
TEST(UnicodeUtf8, IllFormedInputBecomesReplacementCharacters) {
  EXPECT_EQ(decode_utf8("\xFF"), std::u32string{R});
  EXPECT_EQ(decode_utf8("a\x80z"), (std::u32string{U'a', R, U'z'}));
  EXPECT_EQ(decode_utf8("\xE2\x82"), std::u32string{R});  // truncated at end
  EXPECT_EQ(decode_utf8("\xE2\x82"
                        "A"),
            (std::u32string{R, U'A'}));                                      // truncated before ASCII
  EXPECT_EQ(decode_utf8("\xC0\xAF"), (std::u32string{R, R}));                // overlong "/"
  EXPECT_EQ(decode_utf8("\xE0\x80\x80"), (std::u32string{R, R, R}));         // overlong
  EXPECT_EQ(decode_utf8("\xED\xA0\x80"), (std::u32string{R, R, R}));         // surrogate U+D800
  EXPECT_EQ(decode_utf8("\xF4\x90\x80\x80"), (std::u32string{R, R, R, R}));  // above U+10FFFF
  EXPECT_EQ(decode_utf8("\xF0\x9F\x90"), std::u32string{R});
  EXPECT_EQ(decode_utf8(std::string_view("\0", 1)), std::u32string(1, U'\0'));
}

TEST(UnicodeUtf8, EncodesInvalidCodepointsAsReplacement) {
  EXPECT_EQ(encode_utf8(std::u32string{0xD800}), "\xEF\xBF\xBD");
  EXPECT_EQ(encode_utf8(std::u32string{0x110000}), "\xEF\xBF\xBD");
  EXPECT_EQ(encode_utf8(std::u32string{0x10FFFF}), "\xF4\x8F\xBF\xBF");
}

TEST(UnicodeClasses, Letters) {
  for (char32_t cp :
       {U'a', U'Z', char32_t{0xAA}, char32_t{0xE9}, char32_t{0x3A9}, char32_t{0x44F}, char32_t{0x5D0},
        char32_t{0x627}, char32_t{0x6771}, char32_t{0x30AB}, char32_t{0xAC00}, char32_t{0x20000}})
    EXPECT_TRUE(is_letter(cp)) << std::hex << static_cast<uint32_t>(cp);
  for (char32_t cp : {U'1', U' ', U'!', U'_', U'\'', char32_t{0x301}, char32_t{0xD7}, char32_t{0x1F431},
                      char32_t{0x2167}, char32_t{0x3000}, char32_t{0xFFFD}, char32_t{0x10FFFF}})
    EXPECT_FALSE(is_letter(cp)) << std::hex << static_cast<uint32_t>(cp);
}

TEST(UnicodeClasses, Numbers) {
  for (char32_t cp : {U'0', U'9', char32_t{0xB2}, char32_t{0xBD}, char32_t{0x663}, char32_t{0x2167},
                      char32_t{0x3007}, char32_t{0xFF15}, char32_t{0x1D7CE}})
    EXPECT_TRUE(is_number(cp)) << std::hex << static_cast<uint32_t>(cp);
  for (char32_t cp : {U'a', U'.', U'-', char32_t{0x4E00}, char32_t{0x1F431}})
    EXPECT_FALSE(is_number(cp)) << std::hex << static_cast<uint32_t>(cp);
}

TEST(UnicodeClasses, SpaceIsRegexWhiteSpace) {
  for (char32_t cp : {U' ', U'\t', U'\n', U'\r', char32_t{0x0B}, char32_t{0x0C}, char32_t{0x85},
                      char32_t{0xA0}, char32_t{0x1680}, char32_t{0x2000}, char32_t{0x2003}, char32_t{0x200A},
                      char32_t{0x2028}, char32_t{0x202F}, char32_t{0x3000}})
    EXPECT_TRUE(is_space(cp)) << std::hex << static_cast<uint32_t>(cp);
  // U+001C..U+001F are str.isspace() but not regex \s; U+200B ZERO WIDTH SPACE is neither.
  for (char32_t cp : {U'a', U'_', char32_t{0x1C}, char32_t{0x1F}, char32_t{0x200B}, char32_t{0xFEFF}})
    EXPECT_FALSE(is_space(cp)) << std::hex << static_cast<uint32_t>(cp);
}

TEST(UnicodeLower, SimpleMappings) {
  EXPECT_EQ(to_lower(U'A'), U'a');
  EXPECT_EQ(to_lower(U'a'), U'a');
  EXPECT_EQ(to_lower(U'1'), U'1');
  EXPECT_EQ(to_lower(0xC9), char32_t{0xE9});    // É
  EXPECT_EQ(to_lower(0xD7), char32_t{0xD7});    // × is not a letter
  EXPECT_EQ(to_lower(0x100), char32_t{0x101});  // Ā (stride-2 run)
  EXPECT_EQ(to_lower(0x101), char32_t{0x101});
  EXPECT_EQ(to_lower(0x178), char32_t{0xFF});   // Ÿ
  EXPECT_EQ(to_lower(0x3A9), char32_t{0x3C9});  // Ω
  EXPECT_EQ(to_lower(0x42F), char32_t{0x44F});  // Я
  EXPECT_EQ(to_lower(0x1E9E), char32_t{0xDF});  // ẞ
  EXPECT_EQ(to_lower(0x212A), U'k');            // KELVIN SIGN
  EXPECT_EQ(to_lower(0x10400), char32_t{0x10428});
}

TEST(UnicodeLower, StringCasesLikePython) {
  EXPECT_EQ(lower_utf8("A Photo Of A CAT"), "a photo of a cat");
  EXPECT_EQ(lower_utf8("\xC3\x89T\xC3\x89"), "\xC3\xA9t\xC3\xA9");  // ÉTÉ -> été
  EXPECT_EQ(lower_utf8("\xC4\xB0"), "i\xCC\x87");                   // İ -> i + U+0307
  EXPECT_EQ(lower_utf8("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3"),
            "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82");                  // ΟΔΟΣ -> οδος
  EXPECT_EQ(lower_utf8("\xCE\xA3\xCE\x91"), "\xCF\x83\xCE\xB1");  // ΣΑ -> σα
}

}  // namespace
}  // namespace mmlearn::text
