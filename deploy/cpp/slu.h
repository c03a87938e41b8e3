// The SLU pipeline without its runtime: a port of the project's Python code (PaddleNLP ErnieTokenizer = BERT basic
// tokenization + WordPiece; slot decoding), the deployment manifest (deploy_config.json) and a Pipeline that
// ties them together around a runtime's logits. The runtimes: ort_predictor.h (ONNX Runtime) and lite_predictor.h
// (Paddle Lite's light API). Checked against the Python pipeline by tests/test_deploy_cpp.py and test_deploy_arm.py.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace slu {

// ---- JSON -----------------------------------------------------------------------------------------------------

// One JSON value: a scalar, or an array (items) or object (members, in the order their keys first appear; a
// repeated key keeps its last value, as Python's json does).
struct JsonValue {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = kNull;
  bool boolean = false;
  double number = 0;
  std::string str;
  std::vector<JsonValue> items;
  std::vector<std::pair<std::string, JsonValue>> members;
};

// Parses a JSON text (RFC 8259, UTF-8) whose top level is an object and returns its members. Throws
// std::runtime_error("byte N: ...") on malformed input.
std::map<std::string, JsonValue> ParseJsonObject(const std::string& text);

std::string JsonEscape(const std::string& s);

// ---- Text and tokenizer -------------------------------------------------------------------------------------

// Decode UTF-8 into code points; returns false on invalid input (and sets *bad_byte).
bool DecodeUtf8(const std::string& s, std::vector<uint32_t>* out, size_t* bad_byte);
std::string EncodeUtf8(const std::vector<uint32_t>& cps, size_t begin, size_t end);

struct Encoding {
  std::vector<int64_t> ids;                    // [CLS] query [SEP], then any context turns (AddContext)
  std::vector<int64_t> token_types;            // 0 for [CLS] query [SEP], 1 for the context
  std::vector<std::pair<int, int>> offsets;    // code-point spans as PaddleNLP's offset mapping gives them,
                                               // (0,0) for the [CLS] and [SEP] around the query and the context
  bool truncated = false;                      // the query had more than max_length - 2 tokens
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

// PaddleNLP's ErnieTokenizer: the special tokens typed in the text split out first (tokens_trie: [CLS], [SEP],
// [PAD], [UNK], [MASK], exactly and case-sensitively, each kept as that token), then on the text between them
// BasicTokenizer (clean, CJK, whitespace, lower-case + strip accents, punctuation and symbols),
// WordpieceTokenizer, and the offset mapping.
class Tokenizer {
 public:
  // Reads vocab.txt as PaddleNLP does (UTF-8, lines ended by \n, \r\n or \r; id = line index, a repeated token
  // keeps its last line). Throws std::runtime_error naming the file when it is missing, not UTF-8, or lacks
  // [PAD], [CLS], [SEP] or [UNK].
  explicit Tokenizer(const std::string& vocab_path, bool lower_case = true);
  Encoding Encode(const std::vector<uint32_t>& text, int max_length) const;
  int64_t pad_id() const { return pad_; }
  int64_t sep_id() const { return sep_; }
  size_t vocab_size() const { return lines_; }  // ids are 0 .. vocab_size() - 1
  // The vocabulary line of `id` is a WordPiece continuation ("##..."): decoding.continuation_ids.
  bool IsContinuation(int64_t id) const {
    return id >= 0 && static_cast<size_t>(id) < continuation_.size() && continuation_[id];
  }

 private:
  struct Special {
    std::vector<uint32_t> text, offset_text;  // as typed; as the offset mapping searches it (lower-cased)
    int64_t id;
  };
  // BasicTokenizer + WordPiece on query[begin, end): appends each token's id, its text for the offset mapping and
  // whether it is a special token ([UNK])
  void AppendTokens(const std::vector<uint32_t>& query, size_t begin, size_t end, std::vector<int64_t>* ids,
                    std::vector<std::vector<uint32_t>>* pieces, std::vector<bool>* special) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<bool> continuation_;
  std::vector<Special> specials_;
  size_t lines_ = 0;
  int64_t pad_, cls_, sep_, unk_;
  bool lower_case_;
};

using Context = std::vector<std::vector<uint32_t>>;  // the earlier turns of a dialogue (code points), oldest first

// data.add_context: appends to `e` ([CLS] query [SEP]) the last `turns` turns of `context`, most recent first, each
// as its tokens and a [SEP], with token type 1 and offsets (0,0), in at most `max_context_length` tokens in all (a
// turn that does not fit is cut, the older ones dropped). Nothing with `turns` 0 or `max_context_length` < 2.
void AddContext(const Tokenizer& tokenizer, const Context& context, int turns, int max_context_length, Encoding* e);

// ---- Labels and slots ---------------------------------------------------------------------------------------

struct Slot {
  std::string slot, entity;
  int begin, end;  // inclusive character offsets
};

// Labels: one per line, id = line index.
std::vector<std::string> ReadLabels(const std::string& path);

std::vector<Slot> DecodeSlots(const std::vector<uint32_t>& query, const std::vector<std::pair<int, int>>& offsets,
                              const std::vector<int>& slot_ids, const std::vector<std::string>& slot_labels);

using IntentSlotTypes = std::map<std::string, std::vector<std::string>>;  // intent -> the slot types it allows

// A CRF slot head's scores over the S slot labels (deploy_config.json's slot_transitions): start [S], end [S],
// transitions [S * S] row-major (row = previous label). Empty when the model has none.
struct CrfScores {
  std::vector<double> start, end, transitions;
  bool empty() const { return start.empty(); }
};

// decoding.SlotDecoder: slot label ids per token from slot logits. "argmax": each token's best label. "constrained":
// left to right, each token takes its best label among O, B-t for the slot types t of the predicted intent
// (`intent_slot_types`; an intent it lacks allows every type, in slot label order) and I-t when the token before
// is B-t or I-t; a WordPiece continuation takes the label of the token before, as I-t (or O); special tokens and
// padding (offsets end <= start) get PAD (0) and end entities. Of equal logits the first candidate in the order
// O, B-types, I- wins, as Python's max() keeps. "crf": decoding.constrained_viterbi on each run of query tokens: the
// best sequence under `crf`'s scores among those the same constraints allow, in double precision, ties to the
// first candidate in the order O, then B-t, I-t for each allowed type (numpy's argmax).
class SlotDecoder {
 public:
  // Throws std::runtime_error for another mode, slot labels without O (constrained) or a type without both B- and
  // I- labels, an intent_slot_types entry naming a slot type the labels lack, and (crf) scores of other sizes.
  SlotDecoder(const std::string& mode, const std::vector<std::string>& intent_labels,
              const std::vector<std::string>& slot_labels, const IntentSlotTypes& intent_slot_types,
              const CrfScores& crf = CrfScores());
  // `logits`: [ids.size(), num_slot_labels] row-major (the first ids.size() rows of a padded batch item).
  std::vector<int> SlotIds(int intent, const Tokenizer& tokenizer, const std::vector<int64_t>& ids,
                           const std::vector<std::pair<int, int>>& offsets, const float* logits) const;
  bool constrained() const { return constrained_; }

 private:
  void Viterbi(int intent, const Tokenizer& tokenizer, const std::vector<int64_t>& ids, size_t from, size_t to,
               const float* logits, std::vector<int>* out) const;
  bool constrained_ = false, crf_ = false;
  CrfScores scores_;
  std::vector<std::vector<int>> candidates_;  // per intent: O, then B-t, I-t for each type it allows
  size_t num_slot_labels_;
  int o_ = 0;
  std::vector<std::vector<int>> begin_;  // per intent: O then the B- labels it allows
  std::vector<int> inside_;              // per label: its type's I- label for B-/I- labels, else -1
};

// ---- Manifest and predictor ---------------------------------------------------------------------------------

constexpr const char* kManifestName = "deploy_config.json";
constexpr const char* kManifestFormat = "ernie-tiny-slu/1";

// ONNX Runtime session settings (the --graph_optimization ... flags of infer_demo and slu_bench). The defaults are
// ONNX Runtime's own (what the demo always ran); deploy/cpp/README.md measures each against them. Intra-op threads
// are PredictorOptions::cpu_num_threads.
struct SessionSettings {
  std::string graph_optimization = "all";    // disable, basic, extended or all (GraphOptimizationLevel)
  std::string execution_mode = "sequential"; // or parallel (ExecutionMode)
  int inter_op_threads = 1;                  // used by the parallel mode
  bool mem_pattern = true;                   // EnableMemPattern / DisableMemPattern
  bool cpu_arena = true;                     // EnableCpuMemArena / DisableCpuMemArena
  std::string optimized_model_file;          // SetOptimizedModelFilePath: the graph after optimization, when set
  std::vector<std::pair<std::string, std::string>> config;  // AddConfigEntry(key, value), e.g.
                                                            // session.intra_op.allow_spinning=0
};

// The names the settings take, as their index in ONNX Runtime's enums (disable, basic, extended, all; sequential,
// parallel); std::runtime_error naming the allowed names for another.
int GraphOptimizationIndex(const std::string& level);
int ExecutionModeIndex(const std::string& mode);

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
  // Dialogue context (the model then has a second input, token_type_ids) and slot decoding; an older manifest
  // lacks these fields: no context, argmax.
  int context_turns = 0, max_context_length = 0;
  std::string slot_decoding = "argmax";  // or "constrained" or "crf"
  IntentSlotTypes intent_slot_types;
  CrfScores slot_transitions;
  SessionSettings session;
};

// The options that <model_dir>/deploy_config.json gives: model.onnx, the files it names, max length, tokenizer,
// context and slot decoding, and what the model can serve. Throws std::runtime_error("<manifest path>: ...") when
// it is missing, not valid JSON, of another format, lacks a field or has an invalid one (manifest.check_optional's
// checks for the context and decoding fields).
PredictorOptions ReadDeployConfig(const std::string& model_dir);

struct Prediction {
  int intent = 0;              // index into Predictor::intent_labels()
  double confidence = 0;       // softmax probability of the intent
  std::vector<int64_t> ids;    // token ids, [CLS] query [SEP] and any context
  std::vector<int64_t> token_types;  // 0 for the query, 1 for the context
  std::vector<int> slot_ids;   // each token's slot label id
  std::vector<Slot> slots;
  bool truncated = false;      // the query had more than max_length - 2 tokens
};

using Batch = std::vector<std::vector<uint32_t>>;  // decoded queries (code points)

// A runtime's outputs for a batch of B queries padded to T tokens: intent logits [B, num_intents] and slot logits
// [B, T, num_slot_labels], row-major float, owned by the runtime.
struct LogitsView {
  const float* intent = nullptr;
  const float* slots = nullptr;
  size_t batch = 0, num_intents = 0, seq = 0, num_slot_labels = 0;
};

// The tokens of the longest encoding (the batch's padded width).
size_t LongestEncoding(const std::vector<Encoding>& encodings);

// The `rows` (ids or token types) of each encoding, padded with `pad` to `width`, as a [B, width] row-major buffer
// of T (ids fit int32).
template <class T>
void PadRows(const std::vector<Encoding>& encodings, std::vector<int64_t> Encoding::*rows, int64_t pad, size_t width,
             std::vector<T>* buffer) {
  buffer->assign(encodings.size() * width, static_cast<T>(pad));
  for (size_t b = 0; b < encodings.size(); ++b) {
    const std::vector<int64_t>& row = encodings[b].*rows;
    std::copy(row.begin(), row.end(), buffer->begin() + b * width);
  }
}

// What every runtime's predictor shares: the tokenizer, labels, context and slot decoding of the options, checked
// against the manifest, and the steps around the runtime (Encode before it, Decode of its logits after it).
class Pipeline {
 public:
  // Throws std::runtime_error when the model file is missing, or the vocabulary or labels are missing or disagree
  // with the options' manifest (vocabulary size and [PAD] id, label counts, max length + max_context_length against
  // the position embeddings). Zero sizes and a negative pad_token_id are not checked.
  explicit Pipeline(const PredictorOptions& options);

  // `contexts`: empty, or one per query (its earlier turns, oldest first), used by a model with context and
  // ignored by one without.
  std::vector<Encoding> Encode(const Batch& queries, const std::vector<Context>& contexts = {}) const;
  std::vector<Prediction> Decode(const Batch& queries, std::vector<Encoding> encodings,
                                 const LogitsView& logits) const;

  const std::vector<std::string>& intent_labels() const { return intent_labels_; }
  const std::vector<std::string>& slot_labels() const { return slot_labels_; }
  int max_length() const { return max_length_; }
  int context_turns() const { return context_turns_; }

 protected:
  // The model's inputs: input_ids, and token_type_ids when context_turns > 0 (the manifest's "inputs").
  void CheckInputCount(size_t inputs, const std::string& manifest) const;

  std::string model_file_;
  Tokenizer tokenizer_;
  std::vector<std::string> intent_labels_, slot_labels_;
  int context_turns_, max_context_length_, max_length_;
  SlotDecoder decoder_;
};

}  // namespace slu
