// The SLU pipeline on ONNX Runtime: a port of the project's Python code (PaddleNLP ErnieTokenizer = BERT basic
// tokenization + WordPiece; slot decoding), the deployment manifest (deploy_config.json) and a Predictor that
// ties them to an ONNX Runtime session. Checked against the Python pipeline by tests/test_deploy_cpp.py.
#pragma once
#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace slu {

// ---- JSON -----------------------------------------------------------------------------------------------------

// One JSON value; arrays and objects keep only their kind.
struct JsonScalar {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = kNull;
  bool boolean = false;
  double number = 0;
  std::string str;
};

// Parses a JSON text (RFC 8259, UTF-8) whose top level is an object and returns its members; nested arrays and
// objects are checked and kept as bare kinds. Throws std::runtime_error("byte N: ...") on malformed input.
std::map<std::string, JsonScalar> ParseJsonObject(const std::string& text);

std::string JsonEscape(const std::string& s);

// ---- Text and tokenizer -------------------------------------------------------------------------------------

// Decode UTF-8 into code points; returns false on invalid input (and sets *bad_byte).
bool DecodeUtf8(const std::string& s, std::vector<uint32_t>* out, size_t* bad_byte);
std::string EncodeUtf8(const std::vector<uint32_t>& cps, size_t begin, size_t end);

struct Encoding {
  std::vector<int64_t> ids;                    // [CLS] ... [SEP]
  std::vector<std::pair<int, int>> offsets;    // code-point spans as PaddleNLP's offset mapping gives them,
                                               // (0,0) for specials
  bool truncated = false;
};

// The tokenizer's character classes and normalization (PaddleNLP's predicates, tabled by gen_unicode_tables.py);
// exposed for slu_chars, which tests/test_deploy_cpp.py compares with PaddleNLP on every code point.
namespace chars {
const char* UnicodeVersion();
bool IsDropped(uint32_t cp);  // _clean_text drops it: U+0000, U+FFFD, category C* but tab, LF, CR
bool IsSpace(uint32_t cp);    // splits words: _is_whitespace and str.isspace() (U+2028, U+2029 too)
bool IsCjk(uint32_t cp);      // _is_chinese_char: a word of its own
bool IsSplit(uint32_t cp);    // _is_punctuation or _is_symbol: a token of its own
bool IsMn(uint32_t cp);       // non-spacing mark: dropped by accent stripping
int Ccc(uint32_t cp);         // canonical combining class
// Lower-cased and canonically decomposed, marks kept (one character's part of lower() + NFD).
std::vector<uint32_t> LowerDecomposed(uint32_t cp);
}  // namespace chars

// PaddleNLP's ErnieTokenizer: BasicTokenizer (clean, CJK, whitespace, lower-case + strip accents, punctuation and
// symbols), WordpieceTokenizer and the offset mapping. Not ported: its special-token handling, so a query that
// spells one (e.g. "[CLS]") is split like any other text, where PaddleNLP keeps it as that token.
class Tokenizer {
 public:
  // Reads vocab.txt as PaddleNLP does (UTF-8, lines ended by \n, \r\n or \r; id = line index, a repeated token
  // keeps its last line). Throws std::runtime_error naming the file when it is missing, not UTF-8, or lacks
  // [PAD], [CLS], [SEP] or [UNK].
  explicit Tokenizer(const std::string& vocab_path, bool lower_case = true);
  Encoding Encode(const std::vector<uint32_t>& text, int max_length) const;
  int64_t pad_id() const { return pad_; }
  size_t vocab_size() const { return lines_; }  // ids are 0 .. vocab_size() - 1

 private:
  std::unordered_map<std::string, int64_t> vocab_;
  size_t lines_ = 0;
  int64_t pad_, cls_, sep_, unk_;
  bool lower_case_;
};

// ---- Labels and slots ---------------------------------------------------------------------------------------

struct Slot {
  std::string slot, entity;
  int begin, end;  // inclusive character offsets
};

// Labels: one per line, id = line index.
std::vector<std::string> ReadLabels(const std::string& path);

std::vector<Slot> DecodeSlots(const std::vector<uint32_t>& query, const std::vector<std::pair<int, int>>& offsets,
                              const std::vector<int>& slot_ids, const std::vector<std::string>& slot_labels);

// ---- Manifest and predictor ---------------------------------------------------------------------------------

constexpr const char* kManifestName = "deploy_config.json";
constexpr const char* kManifestFormat = "ernie-tiny-slu/1";

struct PredictorOptions {
  std::string model_file, vocab_path, intent_label_path, slot_label_path;
  bool do_lower_case = true;
  int max_length = 16;
  int cpu_num_threads = 1;
  // What the model can serve, checked by Predictor; `manifest` names their source in its errors.
  std::string manifest, input_dtype;  // input_dtype "int32" or "int64"
  int max_position_embeddings = 0;
  size_t vocab_size = 0, num_intents = 0, num_slot_labels = 0;
  int64_t pad_token_id = -1;
};

// The options that <model_dir>/deploy_config.json gives: model.onnx, the files it names, max length, tokenizer
// and what the model can serve. Throws std::runtime_error("<manifest path>: ...") when it is missing, not
// valid JSON, of another format, or lacks a field.
PredictorOptions ReadDeployConfig(const std::string& model_dir);

struct Prediction {
  int intent = 0;              // index into Predictor::intent_labels()
  double confidence = 0;       // softmax probability of the intent
  std::vector<int64_t> ids;    // token ids, [CLS] ... [SEP]
  std::vector<int> slot_ids;   // each token's slot label id
  std::vector<Slot> slots;
  bool truncated = false;      // the query had more than max_length - 2 tokens
};

using Batch = std::vector<std::vector<uint32_t>>;  // decoded queries (code points)

class Predictor {
 public:
  // Loads the model, vocabulary and labels; throws std::runtime_error when they are missing or disagree with
  // the options' manifest (input dtype, vocabulary size and [PAD] id, label counts, max length against the
  // position embeddings). Zero sizes and a negative pad_token_id are not checked.
  explicit Predictor(const PredictorOptions& options);

  std::vector<Prediction> Predict(const Batch& queries);

  // Predict's steps, for timing them apart: tokenizer, Session::Run on the padded ids, decoding.
  std::vector<Encoding> Encode(const Batch& queries) const;
  std::vector<Ort::Value> Run(const std::vector<Encoding>& encodings);
  std::vector<Prediction> Decode(const Batch& queries, std::vector<Encoding> encodings,
                                 const std::vector<Ort::Value>& logits) const;

  const std::vector<std::string>& intent_labels() const { return intent_labels_; }
  const std::vector<std::string>& slot_labels() const { return slot_labels_; }
  int max_length() const { return max_length_; }

 private:
  void CheckModelInput(const PredictorOptions& o);

  std::string model_file_;
  Tokenizer tokenizer_;
  std::vector<std::string> intent_labels_, slot_labels_;
  int max_length_;
  Ort::Env env_;
  Ort::Session session_;
  Ort::AllocatedStringPtr input_name_, intent_name_, slot_name_;
  bool int32_input_ = false;
};

}  // namespace slu
