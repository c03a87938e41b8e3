#include "slu.h"

#include <algorithm>
#include <fstream>

#include "unicode_tables.h"

namespace slu {
namespace {

bool InRanges(const CodeRange* r, size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < r[mid].lo) hi = mid;
    else if (cp > r[mid].hi) lo = mid + 1;
    else return true;
  }
  return false;
}

bool IsPunct(uint32_t cp) { return InRanges(PUNCT, PUNCT_LEN, cp); }
bool IsControl(uint32_t cp) { return InRanges(CONTROL, CONTROL_LEN, cp); }
bool IsWhitespace(uint32_t cp) { return InRanges(WHITESPACE, WHITESPACE_LEN, cp); }

// The CJK ranges of BERT's _is_chinese_char.
bool IsChinese(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

const CodeMap* Normalized(uint32_t cp) {
  const CodeMap* end = NORMALIZE + NORMALIZE_LEN;
  const CodeMap* it = std::lower_bound(NORMALIZE, end, cp, [](const CodeMap& m, uint32_t v) { return m.cp < v; });
  return (it != end && it->cp == cp) ? it : nullptr;
}

struct Char {
  uint32_t cp;
  int pos;  // index of the original code point it came from
};

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string ToUtf8(const std::vector<Char>& cs, size_t b, size_t e) {
  std::string s;
  for (size_t i = b; i < e; ++i) AppendUtf8(cs[i].cp, &s);
  return s;
}

}  // namespace

bool DecodeUtf8(const std::string& s, std::vector<uint32_t>* out, size_t* bad_byte) {
  out->clear();
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    size_t len;
    if (c < 0x80) { cp = c; len = 1; }
    else if ((c & 0xE0) == 0xC0) { cp = c & 0x1F; len = 2; }
    else if ((c & 0xF0) == 0xE0) { cp = c & 0x0F; len = 3; }
    else if ((c & 0xF8) == 0xF0) { cp = c & 0x07; len = 4; }
    else { *bad_byte = i; return false; }
    if (i + len > n) { *bad_byte = i; return false; }
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) { *bad_byte = i; return false; }
      cp = (cp << 6) | (cc & 0x3F);
    }
    // reject overlong forms, surrogates and out-of-range values, as Python's decoder does
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      *bad_byte = i;
      return false;
    }
    out->push_back(cp);
    i += len;
  }
  return true;
}

std::string EncodeUtf8(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
  std::string s;
  for (size_t i = begin; i < end && i < cps.size(); ++i) AppendUtf8(cps[i], &s);
  return s;
}

Tokenizer::Tokenizer(const std::string& vocab_path, bool lower_case) : lower_case_(lower_case) {
  std::ifstream f(vocab_path);
  if (!f) throw std::runtime_error("vocab file not found: " + vocab_path);
  std::string line;
  int64_t id = 0;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!vocab_.count(line)) vocab_[line] = id;
    ++id;
  }
  for (const char* t : {"[PAD]", "[CLS]", "[SEP]", "[UNK]"}) {
    if (!vocab_.count(t)) throw std::runtime_error(vocab_path + ": vocab has no " + t + " token");
  }
  pad_ = vocab_["[PAD]"];
  cls_ = vocab_["[CLS]"];
  sep_ = vocab_["[SEP]"];
  unk_ = vocab_["[UNK]"];
}

Encoding Tokenizer::Encode(const std::vector<uint32_t>& text, int max_length) const {
  // 1. clean text, space out CJK characters, split on whitespace (keeping original positions)
  std::vector<std::vector<Char>> words(1);
  auto split = [&]() { if (!words.back().empty()) words.emplace_back(); };
  for (size_t i = 0; i < text.size(); ++i) {
    uint32_t cp = text[i];
    if (cp == 0 || cp == 0xFFFD || IsControl(cp)) continue;
    if (IsWhitespace(cp)) { split(); continue; }
    if (IsChinese(cp)) { split(); words.back().push_back({cp, static_cast<int>(i)}); split(); continue; }
    words.back().push_back({cp, static_cast<int>(i)});
  }
  // 2. lower-case + strip accents per word, then split off punctuation
  std::vector<std::vector<Char>> tokens;
  for (auto& w : words) {
    if (w.empty()) continue;
    std::vector<Char> norm;
    for (const Char& c : w) {
      const CodeMap* m = lower_case_ ? Normalized(c.cp) : nullptr;
      if (m) {
        for (int k = 0; k < m->n; ++k) norm.push_back({m->out[k], c.pos});
      } else {
        norm.push_back(c);
      }
    }
    std::vector<Char> cur;
    for (const Char& c : norm) {
      if (IsPunct(c.cp)) {
        if (!cur.empty()) tokens.push_back(cur), cur.clear();
        tokens.push_back({c});
      } else if (IsWhitespace(c.cp)) {
        if (!cur.empty()) tokens.push_back(cur), cur.clear();
      } else {
        cur.push_back(c);
      }
    }
    if (!cur.empty()) tokens.push_back(cur);
  }
  // 3. WordPiece, greedy longest match first; a word that cannot be split is one [UNK]
  Encoding enc;
  std::vector<int64_t> ids;
  std::vector<std::pair<int, int>> offs;
  for (const auto& t : tokens) {
    std::vector<int64_t> pid;
    std::vector<std::pair<int, int>> poff;
    bool bad = t.size() > 100;
    size_t start = 0;
    while (!bad && start < t.size()) {
      size_t end = t.size();
      int64_t found = -1;
      while (start < end) {
        std::string sub = (start > 0 ? "##" : "") + ToUtf8(t, start, end);
        auto it = vocab_.find(sub);
        if (it != vocab_.end()) { found = it->second; break; }
        --end;
      }
      if (found < 0) { bad = true; break; }
      pid.push_back(found);
      poff.push_back({t[start].pos, t[end - 1].pos + 1});
      start = end;
    }
    if (bad) {
      ids.push_back(unk_);
      offs.push_back({t.front().pos, t.back().pos + 1});
    } else {
      ids.insert(ids.end(), pid.begin(), pid.end());
      offs.insert(offs.end(), poff.begin(), poff.end());
    }
  }
  size_t keep = static_cast<size_t>(std::max(0, max_length - 2));
  enc.truncated = ids.size() > keep;
  if (enc.truncated) { ids.resize(keep); offs.resize(keep); }
  enc.ids.push_back(cls_);
  enc.offsets.push_back({0, 0});
  enc.ids.insert(enc.ids.end(), ids.begin(), ids.end());
  enc.offsets.insert(enc.offsets.end(), offs.begin(), offs.end());
  enc.ids.push_back(sep_);
  enc.offsets.push_back({0, 0});
  return enc;
}

std::vector<std::string> ReadLabels(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("label file not found: " + path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  if (out.empty()) throw std::runtime_error(path + ": no labels");
  return out;
}

std::vector<Slot> DecodeSlots(const std::vector<uint32_t>& query, const std::vector<std::pair<int, int>>& offsets,
                              const std::vector<int>& slot_ids, const std::vector<std::string>& slot_labels) {
  std::vector<Slot> out;
  bool open = false;
  for (size_t k = 0; k < offsets.size() && k < slot_ids.size(); ++k) {
    int s = offsets[k].first, e = offsets[k].second;
    if (e <= s) { open = false; continue; }
    int sid = slot_ids[k];
    std::string label = (sid >= 0 && sid < static_cast<int>(slot_labels.size())) ? slot_labels[sid] : "O";
    std::string prefix = label.substr(0, 2), type = label.size() > 2 ? label.substr(2) : "";
    if (prefix == "I-" && open && out.back().slot == type) { out.back().end = e; continue; }
    open = false;
    if (prefix == "B-" || prefix == "I-") {
      out.push_back({type, "", s, e});
      open = true;
    }
  }
  for (auto& x : out) {
    x.entity = EncodeUtf8(query, x.begin, x.end);
    x.end -= 1;  // inclusive
  }
  return out;
}

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o.push_back(static_cast<char>(c));
        }
    }
  }
  return o;
}

}  // namespace slu
