// slu_chars: the tokenizer's view of every code point, for tests/test_deploy_cpp.py, which compares it with
// PaddleNLP's predicates. Prints the Unicode version, then a line "<hex> <classes> <ccc>" where the classes (the
// letters of dropped, space, CJK, split, Mn, or '.') or the combining class change, then "<hex> <hex>,..." for
// every code point that lower-casing + decomposition changes (surrogates excluded).
#include <cstdio>
#include <string>

#include "slu.h"

int main() {
  namespace c = slu::chars;
  std::printf("unicode %s\n", c::UnicodeVersion());
  std::string last;
  for (uint32_t cp = 0; cp < 0x110000; ++cp) {
    std::string key;
    const bool flags[] = {c::IsDropped(cp), c::IsSpace(cp), c::IsCjk(cp), c::IsSplit(cp), c::IsMn(cp)};
    for (int k = 0; k < 5; ++k) if (flags[k]) key += "dwzpm"[k];
    key = (key.empty() ? "." : key) + " " + std::to_string(c::Ccc(cp));
    if (key != last) std::printf("%x %s\n", cp, key.c_str());
    last = key;
  }
  for (uint32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    auto d = c::LowerDecomposed(cp);
    if (d.size() == 1 && d[0] == cp) continue;
    std::printf("%x ", cp);
    for (size_t k = 0; k < d.size(); ++k) std::printf(k ? ",%x" : "%x", d[k]);
    std::printf("\n");
  }
  return 0;
}
