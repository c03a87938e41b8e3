// Tokenizer, labels and slot decoding for the SLU demo: a port of the project's Python code
// (PaddleNLP ErnieTokenizer = BERT basic tokenization + WordPiece; utils.decode_slots). Checked against
// golden outputs of the Python pipeline by tests/test_deploy_cpp.py.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace slu {

struct Encoding {
  std::vector<int64_t> ids;                    // [CLS] ... [SEP]
  std::vector<std::pair<int, int>> offsets;    // character (code point) offsets, (0,0) for specials
  bool truncated = false;
};

// Decode UTF-8 into code points; returns false on invalid input (and sets *bad_byte).
bool DecodeUtf8(const std::string& s, std::vector<uint32_t>* out, size_t* bad_byte);
std::string EncodeUtf8(const std::vector<uint32_t>& cps, size_t begin, size_t end);

class Tokenizer {
 public:
  // Reads vocab.txt (one token per line, id = line index). Throws std::runtime_error naming the file when
  // it is missing or lacks [PAD], [CLS], [SEP] or [UNK].
  explicit Tokenizer(const std::string& vocab_path, bool lower_case = true);
  Encoding Encode(const std::vector<uint32_t>& text, int max_length) const;
  int64_t pad_id() const { return pad_; }
  size_t vocab_size() const { return vocab_.size(); }

 private:
  std::unordered_map<std::string, int64_t> vocab_;
  int64_t pad_, cls_, sep_, unk_;
  bool lower_case_;
};

struct Slot {
  std::string slot, entity;
  int begin, end;  // inclusive character offsets
};

// Labels: one per line, id = line index.
std::vector<std::string> ReadLabels(const std::string& path);

std::vector<Slot> DecodeSlots(const std::vector<uint32_t>& query, const std::vector<std::pair<int, int>>& offsets,
                              const std::vector<int>& slot_ids, const std::vector<std::string>& slot_labels);

std::string JsonEscape(const std::string& s);

}  // namespace slu
