#include "slu.h"

#include <locale.h>
#include <stdlib.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "unicode_tables.h"

namespace slu {
namespace {

bool InTable(const CodeRange* r, size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < r[mid].lo) hi = mid;
    else if (cp > r[mid].hi) lo = mid + 1;
    else return true;
  }
  return false;
}

// Lower-cased and decomposed cp (marks kept): writes it to out and returns its length, or 0 when cp stays as
// it is.
int Decompose(uint32_t cp, uint32_t out[kMaxDecomposition]) {
  const CodeRun* end = DECOMPOSE + DECOMPOSE_LEN;
  const CodeRun* it = std::upper_bound(DECOMPOSE, end, cp, [](uint32_t v, const CodeRun& r) { return v < r.lo; });
  if (it == DECOMPOSE) return 0;
  const CodeRun& r = *(it - 1);
  if (cp > r.hi || (cp - r.lo) % r.stride != 0) return 0;
  int64_t k = (cp - r.lo) / r.stride;
  for (int j = 0; j < r.n; ++j) out[j] = static_cast<uint32_t>(r.out[j] + k * r.delta[j]);
  return r.n;
}

using Text = std::vector<uint32_t>;  // code points

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

std::string ToUtf8(const Text& cs, size_t b, size_t e) {
  std::string s;
  for (size_t i = b; i < e; ++i) AppendUtf8(cs[i], &s);
  return s;
}

}  // namespace

namespace chars {

const char* UnicodeVersion() { return SLU_UNICODE_VERSION; }
bool IsDropped(uint32_t cp) { return InTable(DROPPED, DROPPED_LEN, cp); }
bool IsSpace(uint32_t cp) { return InTable(SPACE, SPACE_LEN, cp); }
bool IsCjk(uint32_t cp) { return InTable(CJK, CJK_LEN, cp); }
bool IsSplit(uint32_t cp) { return InTable(SPLIT, SPLIT_LEN, cp); }
bool IsMn(uint32_t cp) { return cp >= 0x300 && InTable(MN, MN_LEN, cp); }

int Ccc(uint32_t cp) {
  if (cp < 0x300) return 0;
  const CodeValue* end = CCC + CCC_LEN;
  const CodeValue* it = std::upper_bound(CCC, end, cp, [](uint32_t v, const CodeValue& r) { return v < r.lo; });
  return it != CCC && cp <= (it - 1)->hi ? (it - 1)->value : 0;
}

std::vector<uint32_t> LowerDecomposed(uint32_t cp) {
  uint32_t out[kMaxDecomposition];
  int n = Decompose(cp, out);
  return n ? std::vector<uint32_t>(out, out + n) : std::vector<uint32_t>{cp};
}

}  // namespace chars

namespace {

// BasicTokenizer's lower() and _run_strip_accents on one word: each character lower-cased and decomposed, the
// combining marks of the word put in canonical order as NFD does (a stable sort of each run of non-zero combining
// classes: it can swap the few spacing marks, Mc, that have one), then the non-spacing marks dropped.
void LowerAndStripAccents(const Text& word, Text* out) {
  out->clear();
  uint32_t d[kMaxDecomposition];
  for (uint32_t c : word) {
    int n = Decompose(c, d);
    if (n == 0) out->push_back(c);
    out->insert(out->end(), d, d + n);
  }
  auto ccc_less = [](uint32_t a, uint32_t b) { return chars::Ccc(a) < chars::Ccc(b); };
  for (size_t i = 0, j; i < out->size(); i = j + 1) {
    for (j = i; j < out->size() && chars::Ccc((*out)[j]) != 0;) ++j;
    if (j - i > 1) std::stable_sort(out->begin() + i, out->begin() + j, ccc_less);
  }
  out->erase(std::remove_if(out->begin(), out->end(), chars::IsMn), out->end());
}

// PaddleNLP's _get_bert_like_offset_mapping, which the Python pipeline's slots come from: the query normalized one
// character at a time (lower-cased, accents stripped, dropped characters removed; whitespace kept), each token
// (without "##"; a special token lower-cased, e.g. "[unk]") searched for after the previous one found, and a token
// not found spanning the gap between its neighbours (one before a special token spans one character). Python's
// negative indexing is kept; an index past the end, where Python would raise, is clamped.
std::vector<std::pair<int, int>> OffsetMapping(const Text& query, const std::vector<Text>& tokens,
                                               const std::vector<bool>& special, bool lower_case) {
  // special[t]: tokens[t] is a special token (an [UNK] of WordPiece or one typed in the query)
  Text text;
  std::vector<int> source;  // char_mapping: the query position of each normalized character
  uint32_t d[kMaxDecomposition];
  for (size_t i = 0; i < query.size(); ++i) {
    int n = lower_case ? Decompose(query[i], d) : 0;
    if (n == 0) d[n++] = query[i];
    for (int k = 0; k < n; ++k) {
      if ((lower_case && chars::IsMn(d[k])) || chars::IsDropped(d[k])) continue;
      text.push_back(d[k]);
      source.push_back(static_cast<int>(i));
    }
  }
  constexpr uint32_t kSigma = 0x3C3, kFinalSigma = 0x3C2;
  std::vector<std::pair<long, long>> found;  // [start, end) in text; start -1: not found
  long offset = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const Text& token = tokens[t];
    bool sigma = std::find_if(token.begin(), token.end(),
                              [](uint32_t c) { return c == kSigma || c == kFinalSigma; }) != token.end();
    auto equal = [&](uint32_t a, uint32_t b) {  // with a sigma, both forms are one letter
      return a == b || (sigma && (a == kSigma || a == kFinalSigma) && (b == kSigma || b == kFinalSigma));
    };
    auto it = std::search(text.begin() + std::min(offset, static_cast<long>(text.size())), text.end(),
                          token.begin(), token.end(), equal);
    long start = it == text.end() ? -1 : it - text.begin(), len = static_cast<long>(token.size());
    if (start < 0 && !sigma && t + 1 < tokens.size() && special[t + 1]) start = offset, len = 1;
    found.push_back({start, start + len});
    if (start >= 0) offset = start + len;
  }
  auto at = [&](long k) {
    long n = static_cast<long>(source.size());
    if (k < 0) k += n;
    return n ? source[std::max(0L, std::min(k, n - 1))] : 0;
  };
  std::vector<std::pair<int, int>> out;
  for (size_t t = 0; t < found.size(); ++t) {
    long start = found[t].first, end = found[t].second;
    if (start == -1) {
      start = t == 0 ? 0 : found[t - 1].second;
      end = t + 1 == found.size() ? static_cast<long>(source.size()) : found[t + 1].first;
    }
    out.push_back({at(start), at(end - 1) + 1});
  }
  return out;
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
  std::ifstream f(vocab_path, std::ios::binary);
  if (!f) throw std::runtime_error("vocab file not found: " + vocab_path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  std::vector<uint32_t> cps;
  size_t bad;
  int64_t id = 0;
  // Python's universal newlines: a line ends at \n, \r\n or \r; the last line may have no end
  for (size_t i = 0, e; i < text.size(); i = e + (text.compare(e, 2, "\r\n") == 0 ? 2 : 1), ++id) {
    e = std::min(text.find_first_of("\r\n", i), text.size());
    std::string line = text.substr(i, e - i);
    if (!DecodeUtf8(line, &cps, &bad))
      throw std::runtime_error(vocab_path + ":" + std::to_string(id + 1) + ": not valid UTF-8 (byte " +
                               std::to_string(bad) + ")");
    vocab_[line] = id;  // a repeated token keeps its last line, as PaddleNLP's dict does
    continuation_.push_back(line.compare(0, 2, "##") == 0);
  }
  lines_ = static_cast<size_t>(id);
  for (const char* t : {"[PAD]", "[CLS]", "[SEP]", "[UNK]"}) {
    if (!vocab_.count(t)) throw std::runtime_error(vocab_path + ": vocab has no " + t + " token");
  }
  pad_ = vocab_["[PAD]"];
  cls_ = vocab_["[CLS]"];
  sep_ = vocab_["[SEP]"];
  unk_ = vocab_["[UNK]"];
  // ErnieTokenizer's special tokens. A vocabulary without [MASK] still has it split out, as PaddleNLP does (its id
  // there is one past the vocabulary, which no model has; [UNK]'s here)
  for (const char* name : {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"}) {  // [UNK] first (AppendTokens)
    Special s{Text(name, name + std::strlen(name)), Text(name, name + std::strlen(name)), unk_};
    if (lower_case_) for (uint32_t& c : s.offset_text) c = c >= 'A' && c <= 'Z' ? c + 32 : c;
    auto it = vocab_.find(name);
    if (it != vocab_.end()) s.id = it->second;
    specials_.push_back(s);
  }
}

void Tokenizer::AppendTokens(const Text& query, size_t begin, size_t end, std::vector<int64_t>* ids,
                             std::vector<Text>* pieces, std::vector<bool>* special) const {
  // 1. _clean_text, _tokenize_chinese_chars and the whitespace split. PaddleNLP lower-cases each character
  // first, which changes none of these classes (gen_unicode_tables.py checks).
  std::vector<Text> words(1);
  auto split = [&]() { if (!words.back().empty()) words.emplace_back(); };
  for (size_t i = begin; i < end; ++i) {
    uint32_t cp = query[i];
    if (chars::IsDropped(cp)) continue;
    if (chars::IsSpace(cp)) { split(); continue; }
    if (chars::IsCjk(cp)) { split(); words.back().push_back(cp); split(); continue; }
    words.back().push_back(cp);
  }
  // 2. lower-case + strip accents per word, then split off punctuation and symbols (and any whitespace that
  // decomposition made: the second whitespace split)
  std::vector<Text> tokens;
  Text norm;
  for (const Text& w : words) {
    if (w.empty()) continue;
    if (lower_case_) LowerAndStripAccents(w, &norm);
    Text cur;
    for (uint32_t c : lower_case_ ? norm : w) {
      if (chars::IsSplit(c)) {
        if (!cur.empty()) tokens.push_back(cur), cur.clear();
        tokens.push_back({c});
      } else if (chars::IsSpace(c)) {
        if (!cur.empty()) tokens.push_back(cur), cur.clear();
      } else {
        cur.push_back(c);
      }
    }
    if (!cur.empty()) tokens.push_back(cur);
  }
  // 3. WordPiece, greedy longest match first; a word that cannot be split is one [UNK]
  const Text& unk_text = specials_[0].offset_text;  // "[unk]": PaddleNLP lower-cases special tokens
  for (const Text& t : tokens) {
    size_t first = ids->size(), start = 0;
    bool bad = t.size() > 100;
    while (!bad && start < t.size()) {
      size_t stop = t.size();
      int64_t found = -1;
      for (; start < stop; --stop) {
        auto it = vocab_.find((start > 0 ? "##" : "") + ToUtf8(t, start, stop));
        if (it != vocab_.end()) { found = it->second; break; }
      }
      if (found < 0) { bad = true; break; }
      ids->push_back(found);
      pieces->emplace_back(t.begin() + start, t.begin() + stop);
      special->push_back(false);
      start = stop;
    }
    if (bad) {
      ids->resize(first), pieces->resize(first), special->resize(first);
      ids->push_back(unk_);
      pieces->push_back(unk_text);
      special->push_back(true);
    }
  }
}

Encoding Tokenizer::Encode(const std::vector<uint32_t>& query, int max_length) const {
  // 0. PaddleNLP's tokenize() splits the special tokens typed in the query out first (tokens_trie, exact and
  // case-sensitive; its per-character lower-casing keeps them and cannot make one) and tokenizes the text between
  // them on its own (the whitespace it strips next to them would be dropped anyway)
  std::vector<int64_t> ids;
  std::vector<Text> pieces;  // each id's text, for the offsets
  std::vector<bool> special;
  size_t begin = 0;
  for (size_t i = 0; i < query.size(); ++i) {
    if (query[i] != '[') continue;
    for (const Special& s : specials_) {
      if (query.size() - i < s.text.size() || !std::equal(s.text.begin(), s.text.end(), query.begin() + i)) continue;
      AppendTokens(query, begin, i, &ids, &pieces, &special);
      ids.push_back(s.id);
      pieces.push_back(s.offset_text);
      special.push_back(true);
      begin = i + s.text.size();
      i = begin - 1;
      break;
    }
  }
  AppendTokens(query, begin, query.size(), &ids, &pieces, &special);
  // 4. offsets of every token, then [CLS] ... [SEP] truncated to max_length
  std::vector<std::pair<int, int>> offs = OffsetMapping(query, pieces, special, lower_case_);
  Encoding enc;
  size_t keep = static_cast<size_t>(std::max(0, max_length - 2));
  enc.truncated = ids.size() > keep;
  if (enc.truncated) { ids.resize(keep); offs.resize(keep); }
  enc.ids.push_back(cls_);
  enc.offsets.push_back({0, 0});
  enc.ids.insert(enc.ids.end(), ids.begin(), ids.end());
  enc.offsets.insert(enc.offsets.end(), offs.begin(), offs.end());
  enc.ids.push_back(sep_);
  enc.offsets.push_back({0, 0});
  enc.token_types.assign(enc.ids.size(), 0);
  return enc;
}

void AddContext(const Tokenizer& tokenizer, const Context& context, int turns, int max_context_length, Encoding* e) {
  if (turns <= 0 || max_context_length < 2) return;
  int budget = max_context_length;
  const int64_t sep = tokenizer.sep_id();
  size_t n = std::min(context.size(), static_cast<size_t>(turns));
  for (size_t k = 0; k < n && budget >= 2; ++k) {  // most recent first
    // the turn's tokens as the query tokenizer gives them at max length max_context_length + 1 ...
    Encoding turn = tokenizer.Encode(context[context.size() - 1 - k], max_context_length + 1);
    // ... without [CLS] and [SEP], cut to budget - 1, then a [SEP]
    size_t take = std::min(turn.ids.size() - 2, static_cast<size_t>(budget - 1));
    e->ids.insert(e->ids.end(), turn.ids.begin() + 1, turn.ids.begin() + 1 + take);
    e->ids.push_back(sep);
    e->offsets.resize(e->ids.size(), {0, 0});
    e->token_types.resize(e->ids.size(), 1);
    budget -= static_cast<int>(take) + 1;
  }
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

SlotDecoder::SlotDecoder(const std::string& mode, const std::vector<std::string>& intent_labels,
                         const std::vector<std::string>& slot_labels, const IntentSlotTypes& intent_slot_types,
                         const CrfScores& crf)
    : num_slot_labels_(slot_labels.size()) {
  if (mode != "argmax" && mode != "constrained" && mode != "crf")
    throw std::runtime_error("slot decoding must be one of argmax, constrained, crf, not \"" + JsonEscape(mode) +
                             "\"");
  crf_ = mode == "crf";
  constrained_ = mode != "argmax";
  if (!constrained_) return;
  if (crf_) {
    const size_t S = slot_labels.size();
    if (crf.empty())
      throw std::runtime_error("slot decoding crf needs the CRF transition scores of a model trained with --use_crf");
    if (crf.start.size() != S || crf.end.size() != S || crf.transitions.size() != S * S)
      throw std::runtime_error("slot_transitions must hold start [" + std::to_string(S) + "], end [" +
                               std::to_string(S) + "] and transitions [" + std::to_string(S) + "][" +
                               std::to_string(S) + "] (the slot labels)");
    scores_ = crf;
  }
  std::map<std::string, int> id;  // a repeated label keeps its last line, as LabelSet's dict does
  std::vector<std::string> types;  // LabelSet.slot_types: the B-/I- types in label order
  for (size_t k = 0; k < slot_labels.size(); ++k) {
    const std::string& label = slot_labels[k];
    id[label] = static_cast<int>(k);
    bool bio = label.compare(0, 2, "B-") == 0 || label.compare(0, 2, "I-") == 0;
    if (bio && std::find(types.begin(), types.end(), label.substr(2)) == types.end()) types.push_back(label.substr(2));
  }
  if (!id.count("O")) throw std::runtime_error("constrained slot decoding needs an O slot label");
  o_ = id["O"];
  for (const std::string& t : types) {
    for (const char* prefix : {"B-", "I-"}) {
      if (!id.count(prefix + t))
        throw std::runtime_error("the slot labels have no " + std::string(prefix) + t + " for slot type " + t);
    }
  }
  inside_.assign(slot_labels.size(), -1);
  for (size_t k = 0; k < slot_labels.size(); ++k) {
    const std::string& label = slot_labels[k];
    if (label.compare(0, 2, "B-") == 0 || label.compare(0, 2, "I-") == 0) inside_[k] = id["I-" + label.substr(2)];
  }
  for (const std::string& intent : intent_labels) {
    auto it = intent_slot_types.find(intent);
    const std::vector<std::string>& allowed = it == intent_slot_types.end() ? types : it->second;
    std::vector<int> begin{o_}, candidates{o_};
    for (const std::string& t : allowed) {
      auto b = id.find("B-" + t);
      if (b == id.end())
        throw std::runtime_error("intent_slot_types: intent \"" + JsonEscape(intent) + "\" allows slot type \"" +
                                 JsonEscape(t) + "\", which the slot labels lack");
      begin.push_back(b->second);
      candidates.push_back(b->second);
      candidates.push_back(id.at("I-" + t));
    }
    begin_.push_back(std::move(begin));
    candidates_.push_back(std::move(candidates));
  }
}

std::vector<int> SlotDecoder::SlotIds(int intent, const Tokenizer& tokenizer, const std::vector<int64_t>& ids,
                                      const std::vector<std::pair<int, int>>& offsets, const float* logits) const {
  const size_t n = offsets.size(), S = num_slot_labels_;
  std::vector<int> out;
  out.reserve(n);
  if (!constrained_) {
    for (size_t k = 0; k < n; ++k) {
      const float* row = logits + k * S;
      out.push_back(static_cast<int>(std::max_element(row, row + S) - row));
    }
    return out;
  }
  if (crf_) {
    out.assign(n, 0);  // PAD for special tokens and padding
    for (size_t k = 0; k < n;) {
      if (offsets[k].second <= offsets[k].first) {
        ++k;
        continue;
      }
      size_t end = k;
      while (end < n && offsets[end].second > offsets[end].first) ++end;
      Viterbi(intent, tokenizer, ids, k, end, logits, &out);
      k = end;
    }
    return out;
  }
  const std::vector<int>& begin = begin_.at(intent);
  int prev = -1;  // the label of the token before; -1 after a special token
  for (size_t k = 0; k < n; ++k) {
    if (offsets[k].second <= offsets[k].first) {
      out.push_back(0);  // PAD
      prev = -1;
      continue;
    }
    int sid;
    if (prev >= 0 && k < ids.size() && tokenizer.IsContinuation(ids[k])) {
      sid = prev == o_ ? o_ : inside_[prev];
    } else {  // the first of the highest: candidates O, B-types, then I- of the token before
      const float* row = logits + k * S;
      sid = begin[0];
      for (size_t c = 1; c < begin.size(); ++c) {
        if (row[begin[c]] > row[sid]) sid = begin[c];
      }
      if (prev >= 0 && prev != o_ && row[inside_[prev]] > row[sid]) sid = inside_[prev];
    }
    out.push_back(sid);
    prev = sid;
  }
  return out;
}

void SlotDecoder::Viterbi(int intent, const Tokenizer& tokenizer, const std::vector<int64_t>& ids, size_t from,
                          size_t to, const float* logits, std::vector<int>* out) const {
  const std::vector<int>& cand = candidates_.at(intent);
  const size_t C = cand.size(), S = num_slot_labels_;
  const double kNone = -std::numeric_limits<double>::infinity();
  std::vector<bool> inside(C);
  for (size_t j = 0; j < C; ++j) inside[j] = cand[j] != o_ && inside_[cand[j]] == cand[j];
  // allowed(i, j, continuing): I-t only after B-t or I-t; a continuation piece: O only after O, never B-t
  auto allowed = [&](size_t i, size_t j, bool continuing) {
    if (inside[j] && inside_[cand[i]] != cand[j]) return false;
    if (continuing) return inside[j] || (j == 0 && i == 0);
    return true;
  };
  std::vector<double> score(C), next(C);
  for (size_t j = 0; j < C; ++j)
    score[j] = inside[j] ? kNone : scores_.start[cand[j]] + static_cast<double>(logits[from * S + cand[j]]);
  std::vector<std::vector<size_t>> back(to - from, std::vector<size_t>(C, 0));
  for (size_t k = from + 1; k < to; ++k) {
    const bool continuing = k < ids.size() && tokenizer.IsContinuation(ids[k]);
    for (size_t j = 0; j < C; ++j) {
      double best = kNone;
      size_t arg = 0;
      for (size_t i = 0; i < C; ++i) {
        const double v = allowed(i, j, continuing) ? score[i] + scores_.transitions[cand[i] * S + cand[j]] : kNone;
        if (v > best) best = v, arg = i;
      }
      back[k - from][j] = arg;
      next[j] = best + static_cast<double>(logits[k * S + cand[j]]);
    }
    score.swap(next);
  }
  size_t last = 0;
  double best = kNone;
  for (size_t j = 0; j < C; ++j) {
    const double v = score[j] + scores_.end[cand[j]];
    if (v > best) best = v, last = j;
  }
  for (size_t k = to; k-- > from;) {
    (*out)[k] = cand[last];
    if (k > from) last = back[k - from][last];
  }
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

// ---- JSON -----------------------------------------------------------------------------------------------------

namespace {

constexpr int kMaxJsonDepth = 512;  // deeper documents are refused: a bound on the recursion

bool IsDigit(int c) { return c >= '0' && c <= '9'; }

int HexValue(int c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Recursive descent over RFC 8259; errors name the byte offset where the text stops being JSON.
class JsonParser {
 public:
  explicit JsonParser(const std::string& s) : s_(s) {}

  std::map<std::string, JsonValue> TopObject() {
    JsonValue top;
    SkipSpace();
    if (Peek() != '{') Fail("the top level must be an object");
    ++i_;
    Members(1, &top);
    SkipSpace();
    if (i_ != s_.size()) Fail("unexpected text after the top-level object");
    std::map<std::string, JsonValue> members;
    for (auto& m : top.members) members[m.first] = std::move(m.second);
    return members;
  }

 private:
  [[noreturn]] void FailAt(size_t at, const std::string& what) const {
    throw std::runtime_error("byte " + std::to_string(at) + ": " + what);
  }
  [[noreturn]] void Fail(const std::string& what) const {
    FailAt(i_, i_ < s_.size() ? what : "unexpected end of input");
  }
  int Peek() const { return i_ < s_.size() ? static_cast<unsigned char>(s_[i_]) : -1; }
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void Expect(char c) {
    SkipSpace();
    if (Peek() != c) Fail(std::string("expected '") + c + "'");
    ++i_;
  }

  JsonValue Value(int depth) {
    if (depth > kMaxJsonDepth) Fail("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    SkipSpace();
    JsonValue v;
    switch (Peek()) {
      case '{': ++i_; v.kind = JsonValue::kObject; Members(depth + 1, &v); break;
      case '[': ++i_; v.kind = JsonValue::kArray; Elements(depth + 1, &v); break;
      case '"': v.kind = JsonValue::kString; v.str = String(); break;
      case 't': Literal("true"); v.kind = JsonValue::kBool; v.boolean = true; break;
      case 'f': Literal("false"); v.kind = JsonValue::kBool; break;
      case 'n': Literal("null"); break;
      default: v.kind = JsonValue::kNumber; v.number = Number();
    }
    return v;
  }

  // After '{': the members up to '}', into out->members in the order their keys first appear; of equal keys the
  // last value wins (Python's dict).
  void Members(int depth, JsonValue* out) {
    std::map<std::string, size_t> index;
    SkipSpace();
    if (Peek() == '}') { ++i_; return; }
    for (;;) {
      SkipSpace();
      if (Peek() != '"') Fail("expected a string key");
      std::string key = String();
      Expect(':');
      JsonValue v = Value(depth);
      auto seen = index.find(key);
      if (seen != index.end()) {
        out->members[seen->second].second = std::move(v);
      } else {
        index[key] = out->members.size();
        out->members.emplace_back(std::move(key), std::move(v));
      }
      SkipSpace();
      if (Peek() == ',') { ++i_; continue; }
      if (Peek() == '}') { ++i_; return; }
      Fail("expected ',' or '}'");
    }
  }

  // After '[': the elements up to ']', into out->items.
  void Elements(int depth, JsonValue* out) {
    SkipSpace();
    if (Peek() == ']') { ++i_; return; }
    for (;;) {
      out->items.push_back(Value(depth));
      SkipSpace();
      if (Peek() == ',') { ++i_; continue; }
      if (Peek() == ']') { ++i_; return; }
      Fail("expected ',' or ']'");
    }
  }

  void Literal(const char* word) {
    size_t n = std::strlen(word);
    if (s_.compare(i_, n, word) != 0) Fail("expected a value");
    i_ += n;
  }

  double Number() {
    size_t start = i_;
    if (Peek() == '-') ++i_;
    if (!IsDigit(Peek())) Fail(i_ == start ? "expected a value" : "expected a digit");
    if (Peek() == '0') ++i_;
    else Digits();
    if (Peek() == '.') {
      ++i_;
      Digits();
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++i_;
      if (Peek() == '+' || Peek() == '-') ++i_;
      Digits();
    }
    // strtod as in the "C" locale: exact, and +-HUGE_VAL or 0 out of range, as Python's json gives
    static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(0));
    return strtod_l(s_.substr(start, i_ - start).c_str(), nullptr, c_locale);
  }

  void Digits() {
    if (!IsDigit(Peek())) Fail("expected a digit");
    while (IsDigit(Peek())) ++i_;
  }

  // At '"': the string's UTF-8 bytes with escapes decoded.
  std::string String() {
    ++i_;
    std::string out;
    for (;;) {
      int c = Peek();
      if (c == -1) Fail("unterminated string");
      if (c == '"') { ++i_; return out; }
      if (c < 0x20) Fail("control character in a string");
      if (c == '\\') {
        Escape(&out);
      } else {
        out.push_back(s_[i_++]);
      }
    }
  }

  // At '\\': one escape sequence.
  void Escape(std::string* out) {
    size_t start = i_++;
    int c = Peek();
    if (c == 'u') {
      ++i_;
      AppendUtf8(UnicodeEscape(), out);
      return;
    }
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char* p = c > 0 ? std::strchr(from, c) : nullptr;
    if (!p) FailAt(start, "invalid escape");
    out->push_back(to[p - from]);
    ++i_;
  }

  // After "\u": one code point, a UTF-16 surrogate pair combined. An unpaired surrogate is valid JSON but no
  // character: U+FFFD, as a UTF-8 decoder gives.
  uint32_t UnicodeEscape() {
    uint32_t cp = Hex4();
    if (cp < 0xD800 || cp > 0xDFFF) return cp;
    size_t next = i_;
    if (cp <= 0xDBFF && s_.compare(i_, 2, "\\u") == 0) {
      i_ += 2;
      uint32_t low = Hex4();
      if (low >= 0xDC00 && low <= 0xDFFF) return 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      i_ = next;  // the next escape is a character of its own
    }
    return 0xFFFD;
  }

  uint32_t Hex4() {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k, ++i_) {
      int d = HexValue(Peek());
      if (d < 0) Fail("expected 4 hex digits after \\u");
      v = v * 16 + d;
    }
    return v;
  }

  const std::string& s_;
  size_t i_ = 0;
};

}  // namespace

std::map<std::string, JsonValue> ParseJsonObject(const std::string& text) {
  std::vector<uint32_t> cps;
  size_t bad;
  if (!DecodeUtf8(text, &cps, &bad)) throw std::runtime_error("byte " + std::to_string(bad) + ": not valid UTF-8");
  return JsonParser(text).TopObject();
}

// ---- Manifest -------------------------------------------------------------------------------------------------

namespace {

using JsonObject = std::map<std::string, JsonValue>;

JsonObject ParseManifest(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("not found (export the model with run_train.py --do_export, which writes it)");
  std::stringstream text;
  text << f.rdbuf();
  try {
    return ParseJsonObject(text.str());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string("not valid JSON (") + e.what() + ")");
  }
}

const JsonValue& Field(const JsonObject& m, const std::string& key, JsonValue::Kind kind, const char* what) {
  auto it = m.find(key);
  if (it == m.end()) throw std::runtime_error("no \"" + key + "\" field");
  if (it->second.kind != kind) throw std::runtime_error(key + " must be " + what);
  return it->second;
}

std::string StringField(const JsonObject& m, const std::string& key) {
  return Field(m, key, JsonValue::kString, "a string").str;
}

int IntField(const JsonObject& m, const std::string& key, int min) {
  const char* what = min > 0 ? "a positive integer" : "a non-negative integer";
  double v = Field(m, key, JsonValue::kNumber, what).number;
  if (!(v >= min && v <= INT_MAX && v == std::floor(v))) throw std::runtime_error(key + " must be " + what);
  return static_cast<int>(v);
}

void CheckFormat(const JsonObject& m) {
  auto it = m.find("format");
  if (it != m.end() && it->second.kind == JsonValue::kString && it->second.str == kManifestFormat) return;
  std::string have = it == m.end() ? "missing" : it->second.kind == JsonValue::kString
      ? "\"" + JsonEscape(it->second.str) + "\"" : "not a string";
  throw std::runtime_error(std::string("format must be \"") + kManifestFormat + "\", not " + have);
}

std::string InputDtype(const JsonObject& m) {
  std::string dtype = StringField(m, "input_dtype");
  if (dtype != "int32" && dtype != "int64")
    throw std::runtime_error("input_dtype must be int32 or int64, not \"" + JsonEscape(dtype) + "\"");
  return dtype;
}

// The fields added after the first release (manifest.check_optional), with the values an older export means.
void OptionalFields(const JsonObject& m, PredictorOptions* o) {
  o->context_turns = m.count("context_turns") ? IntField(m, "context_turns", 0) : 0;
  o->max_context_length = m.count("max_context_length") ? IntField(m, "max_context_length", 0) : 0;
  if (o->context_turns && o->max_context_length < 2)
    throw std::runtime_error("context_turns " + std::to_string(o->context_turns) +
                             " needs max_context_length >= 2");
  if (o->context_turns && o->max_length + o->max_context_length > o->max_position_embeddings)
    throw std::runtime_error("max_seq_length + max_context_length exceed the " +
                             std::to_string(o->max_position_embeddings) + " position embeddings");
  o->slot_decoding = m.count("slot_decoding") ? StringField(m, "slot_decoding") : "argmax";
  if (o->slot_decoding != "argmax" && o->slot_decoding != "constrained" && o->slot_decoding != "crf")
    throw std::runtime_error("slot_decoding must be one of argmax, constrained, crf, not \"" +
                             JsonEscape(o->slot_decoding) + "\"");
  auto crf = m.find("slot_transitions");
  if (crf != m.end() && crf->second.kind != JsonValue::kNull) {
    const std::string what = "slot_transitions must be an object of number arrays start, end and transitions";
    if (crf->second.kind != JsonValue::kObject) throw std::runtime_error(what);
    auto numbers = [&](const JsonValue& v, std::vector<double>* into) {
      if (v.kind != JsonValue::kArray) throw std::runtime_error(what);
      for (const JsonValue& x : v.items) {
        if (x.kind != JsonValue::kNumber) throw std::runtime_error(what);
        into->push_back(x.number);
      }
    };
    bool start = false, end = false, transitions = false;
    for (const auto& member : crf->second.members) {
      if (member.first == "start") numbers(member.second, &o->slot_transitions.start), start = true;
      if (member.first == "end") numbers(member.second, &o->slot_transitions.end), end = true;
      if (member.first == "transitions") {
        if (member.second.kind != JsonValue::kArray) throw std::runtime_error(what);
        for (const JsonValue& row : member.second.items) numbers(row, &o->slot_transitions.transitions);
        transitions = true;
      }
    }
    if (!start || !end || !transitions) throw std::runtime_error(what);
  }
  if (o->slot_decoding == "crf" && o->slot_transitions.empty())
    throw std::runtime_error("slot_decoding crf needs slot_transitions (a model trained with --use_crf)");
  auto table = m.find("intent_slot_types");
  if (table == m.end()) return;
  const std::string what = "intent_slot_types must map intents to lists of slot types";
  if (table->second.kind != JsonValue::kObject) throw std::runtime_error(what);
  for (const auto& member : table->second.members) {
    if (member.second.kind != JsonValue::kArray) throw std::runtime_error(what);
    std::vector<std::string>& types = o->intent_slot_types[member.first];
    for (const JsonValue& t : member.second.items) {
      if (t.kind != JsonValue::kString) throw std::runtime_error(what);
      types.push_back(t.str);
    }
  }
}

PredictorOptions OptionsFromManifest(const std::string& dir, const JsonObject& m) {
  CheckFormat(m);
  PredictorOptions o;
  o.manifest = dir + "/" + kManifestName;
  o.model_file = dir + "/model.onnx";
  o.vocab_path = dir + "/" + StringField(m, "vocab_file");
  o.intent_label_path = dir + "/" + StringField(m, "intent_label_file");
  o.slot_label_path = dir + "/" + StringField(m, "slot_label_file");
  o.do_lower_case = Field(m, "do_lower_case", JsonValue::kBool, "true or false").boolean;
  o.vocab_size = IntField(m, "vocab_size", 1);
  o.pad_token_id = IntField(m, "pad_token_id", 0);
  o.max_length = IntField(m, "max_seq_length", 1);
  o.max_position_embeddings = IntField(m, "max_position_embeddings", 1);
  o.num_intents = IntField(m, "num_intents", 1);
  o.num_slot_labels = IntField(m, "num_slot_labels", 1);
  o.input_dtype = InputDtype(m);
  OptionalFields(m, &o);
  return o;
}

}  // namespace

PredictorOptions ReadDeployConfig(const std::string& model_dir) {
  const std::string path = model_dir + "/" + kManifestName;
  try {
    return OptionsFromManifest(model_dir, ParseManifest(path));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

// ---- Pipeline ------------------------------------------------------------------------------------------------

namespace {

std::string ExistingModelFile(const std::string& path) {
  if (!std::ifstream(path).good()) throw std::runtime_error("model file not found: " + path);
  return path;
}

// The vocabulary must fill the embedding table exactly (larger ids would make the runtime abort) and put [PAD]
// where the model pads.
Tokenizer CheckedTokenizer(const PredictorOptions& o) {
  Tokenizer t(o.vocab_path, o.do_lower_case);
  if (o.vocab_size && t.vocab_size() != o.vocab_size)
    throw std::runtime_error(o.vocab_path + ": " + std::to_string(t.vocab_size()) + " tokens, " + o.manifest +
                             " says vocab_size " + std::to_string(o.vocab_size) + " (embedding rows)");
  if (o.pad_token_id >= 0 && t.pad_id() != o.pad_token_id)
    throw std::runtime_error(o.vocab_path + ": [PAD] is on line " + std::to_string(t.pad_id() + 1) + ", " +
                             o.manifest + " says pad_token_id " + std::to_string(o.pad_token_id));
  return t;
}

// The query's max length; with the context's max_context_length tokens it must fit the position embeddings
// (manifest.max_length).
int CheckedMaxLength(const PredictorOptions& o) {
  const std::string n = std::to_string(o.max_length);
  if (o.max_length < 3) throw std::runtime_error("max length " + n + " is below 3 ([CLS], one token, [SEP])");
  const std::string context = o.max_context_length > 0
      ? " + max_context_length " + std::to_string(o.max_context_length) : "";
  if (o.max_position_embeddings > 0 && o.max_length + o.max_context_length > o.max_position_embeddings)
    throw std::runtime_error("max length " + n + context + " is larger than max_position_embeddings " +
                             std::to_string(o.max_position_embeddings) + " in " + o.manifest +
                             ": the model has no position embeddings beyond it");
  return o.max_length;
}

SlotDecoder CheckedDecoder(const PredictorOptions& o, const std::vector<std::string>& intent_labels,
                          const std::vector<std::string>& slot_labels) {
  try {
    return SlotDecoder(o.slot_decoding, intent_labels, slot_labels, o.intent_slot_types, o.slot_transitions);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error((o.manifest.empty() ? "" : o.manifest + ": ") + e.what());
  }
}

int NonNegative(int v, const char* what) {
  if (v < 0) throw std::runtime_error(std::string(what) + " must not be negative");
  return v;
}

std::vector<std::string> CheckedLabels(const std::string& path, size_t expected, const std::string& what,
                                       const std::string& manifest) {
  auto labels = ReadLabels(path);
  if (expected && labels.size() != expected)
    throw std::runtime_error(manifest + ": the model outputs " + std::to_string(expected) + " " + what +
                             " labels, the " + what + " label file " + path + " has " +
                             std::to_string(labels.size()));
  return labels;
}

size_t ArgMax(const float* v, size_t n) { return std::max_element(v, v + n) - v; }

int IndexOf(const std::vector<std::string>& names, const std::string& name, const std::string& what) {
  for (size_t k = 0; k < names.size(); ++k)
    if (names[k] == name) return static_cast<int>(k);
  std::string list;
  for (size_t k = 0; k < names.size(); ++k) list += (k ? (k + 1 == names.size() ? " or " : ", ") : "") + names[k];
  throw std::runtime_error(what + " must be " + list + ", not '" + name + "'");
}

}  // namespace

int GraphOptimizationIndex(const std::string& level) {
  return IndexOf({"disable", "basic", "extended", "all"}, level, "graph optimization level");
}

int ExecutionModeIndex(const std::string& mode) {
  return IndexOf({"sequential", "parallel"}, mode, "execution mode");
}

Pipeline::Pipeline(const PredictorOptions& o)
    : model_file_(ExistingModelFile(o.model_file)),
      tokenizer_(CheckedTokenizer(o)),
      intent_labels_(CheckedLabels(o.intent_label_path, o.num_intents, "intent", o.manifest)),
      slot_labels_(CheckedLabels(o.slot_label_path, o.num_slot_labels, "slot", o.manifest)),
      context_turns_(NonNegative(o.context_turns, "context_turns")),
      max_context_length_(NonNegative(o.max_context_length, "max_context_length")),
      max_length_(CheckedMaxLength(o)),
      decoder_(CheckedDecoder(o, intent_labels_, slot_labels_)) {}

void Pipeline::CheckInputCount(size_t n, const std::string& manifest) const {
  const size_t want = context_turns_ > 0 ? 2 : 1;
  if (n != want)
    throw std::runtime_error(model_file_ + " has " + std::to_string(n) + " input" + (n == 1 ? "" : "s") + ", but " +
                             manifest + " says context_turns " + std::to_string(context_turns_) + " (" +
                             (want == 2 ? "input_ids and token_type_ids" : "input_ids alone") + ")");
}

std::vector<Encoding> Pipeline::Encode(const Batch& queries, const std::vector<Context>& contexts) const {
  if (!contexts.empty() && contexts.size() != queries.size())
    throw std::invalid_argument("Pipeline::Encode: " + std::to_string(contexts.size()) + " contexts for " +
                                std::to_string(queries.size()) + " queries");
  std::vector<Encoding> out;
  out.reserve(queries.size());
  for (size_t k = 0; k < queries.size(); ++k) {
    out.push_back(tokenizer_.Encode(queries[k], max_length_));
    if (!contexts.empty()) AddContext(tokenizer_, contexts[k], context_turns_, max_context_length_, &out.back());
  }
  return out;
}

size_t LongestEncoding(const std::vector<Encoding>& encodings) {
  size_t n = 0;
  for (const auto& e : encodings) n = std::max(n, e.ids.size());
  return n;
}

std::vector<Prediction> Pipeline::Decode(const Batch& queries, std::vector<Encoding> encodings,
                                         const LogitsView& logits) const {
  if (encodings.empty()) return {};
  const size_t n_int = logits.num_intents, T = logits.seq, n_slot = logits.num_slot_labels;
  if (logits.batch != encodings.size())
    throw std::runtime_error("the model answered " + std::to_string(logits.batch) + " queries of " +
                             std::to_string(encodings.size()));
  if (n_int != intent_labels_.size() || n_slot != slot_labels_.size())
    throw std::runtime_error("model outputs " + std::to_string(n_int) + " intents / " + std::to_string(n_slot) +
                             " slot labels, the label files have " + std::to_string(intent_labels_.size()) +
                             " / " + std::to_string(slot_labels_.size()));
  const float* intent = logits.intent;
  const float* slots = logits.slots;
  std::vector<Prediction> out(encodings.size());
  for (size_t b = 0; b < encodings.size(); ++b) {
    Prediction& p = out[b];
    const float* il = intent + b * n_int;
    p.intent = static_cast<int>(ArgMax(il, n_int));
    double z = 0;
    for (size_t k = 0; k < n_int; ++k) z += std::exp(static_cast<double>(il[k]) - il[p.intent]);
    p.confidence = 1.0 / z;
    Encoding& e = encodings[b];
    if (e.ids.size() > T) throw std::runtime_error("the model's slot logits have fewer tokens than its input");
    p.slot_ids = decoder_.SlotIds(p.intent, tokenizer_, e.ids, e.offsets, slots + b * T * n_slot);
    p.slots = DecodeSlots(queries[b], e.offsets, p.slot_ids, slot_labels_);
    p.ids = std::move(e.ids);
    p.token_types = std::move(e.token_types);
    p.truncated = e.truncated;
  }
  return out;
}

}  // namespace slu
