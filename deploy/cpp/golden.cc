// slu_golden: the library's pre- and post-processing without a model, for tests/test_deploy_cpp.py, which compares
// them with the Python functions (data.add_context, decoding.SlotDecoder). MODEL_DIR gives deploy_config.json (max
// length, context_turns, max_context_length, slot_decoding, intent_slot_types), the vocabulary and the labels;
// model.onnx is not read.
//   slu_golden encode MODEL_DIR CASES   each line "query[<TAB>turn]..." (the turns oldest first) -> one JSON line
//                                       {"ids", "token_type_ids", "offsets", "truncated"}: the query encoded with
//                                       max_seq_length, then AddContext
//   slu_golden decode MODEL_DIR CASES   each line "intent<TAB>ids<TAB>offsets<TAB>logits": an intent id, token ids
//                                       (space separated), offsets ("start,end" space separated), the T x S slot
//                                       logits row-major (space separated) -> a JSON list of slot label ids
// Errors: one line on stderr, exit status 1.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.h"
#include "slu.h"

namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, sep);) out.push_back(x);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

std::vector<uint32_t> Decoded(const std::string& text) {
  std::vector<uint32_t> cps;
  size_t bad;
  if (!slu::DecodeUtf8(text, &cps, &bad)) throw std::runtime_error("not valid UTF-8: " + text);
  return cps;
}

template <class T>
std::string JsonList(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t k = 0; k < v.size(); ++k) s += (k ? ", " : "") + std::to_string(v[k]);
  return s + "]";
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cases file not found: " + path);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) out.push_back(line);
  return out;
}

void Encode(const slu::PredictorOptions& o, const std::string& cases) {
  slu::Tokenizer tokenizer(o.vocab_path, o.do_lower_case);
  for (const std::string& line : Lines(cases)) {
    std::vector<std::string> cols = Split(line, '\t');
    slu::Context context;
    for (size_t k = 1; k < cols.size(); ++k) context.push_back(Decoded(cols[k]));
    slu::Encoding e = tokenizer.Encode(Decoded(cols.empty() ? "" : cols[0]), o.max_length);
    slu::AddContext(tokenizer, context, o.context_turns, o.max_context_length, &e);
    std::string offsets = "[";
    for (size_t k = 0; k < e.offsets.size(); ++k)
      offsets += (k ? ", [" : "[") + std::to_string(e.offsets[k].first) + ", " +
                 std::to_string(e.offsets[k].second) + "]";
    std::printf("{\"ids\": %s, \"token_type_ids\": %s, \"offsets\": %s], \"truncated\": %s}\n",
                JsonList(e.ids).c_str(), JsonList(e.token_types).c_str(), offsets.c_str(),
                e.truncated ? "true" : "false");
  }
}

void Decode(const slu::PredictorOptions& o, const std::string& cases) {
  slu::Tokenizer tokenizer(o.vocab_path, o.do_lower_case);
  auto intents = slu::ReadLabels(o.intent_label_path), slots = slu::ReadLabels(o.slot_label_path);
  slu::SlotDecoder decoder(o.slot_decoding, intents, slots, o.intent_slot_types, o.slot_transitions);
  for (const std::string& line : Lines(cases)) {
    std::vector<std::string> cols = Split(line, '\t');
    if (cols.size() != 4) throw std::runtime_error("a decode case has 4 tab-separated columns: " + line);
    int intent = std::stoi(cols[0]);
    if (intent < 0 || intent >= static_cast<int>(intents.size())) throw std::runtime_error("no intent " + cols[0]);
    std::vector<int64_t> ids;
    for (const std::string& x : Split(cols[1], ' ')) ids.push_back(std::stoll(x));
    std::vector<std::pair<int, int>> offsets;
    for (const std::string& x : Split(cols[2], ' ')) {
      size_t comma = x.find(',');
      offsets.push_back({std::stoi(x.substr(0, comma)), std::stoi(x.substr(comma + 1))});
    }
    std::vector<float> logits;
    for (const std::string& x : Split(cols[3], ' ')) logits.push_back(std::strtof(x.c_str(), nullptr));
    if (ids.size() != offsets.size() || logits.size() != ids.size() * slots.size())
      throw std::runtime_error("a decode case needs as many offsets as ids and ids x slot labels logits");
    std::printf("%s\n", JsonList(decoder.SlotIds(intent, tokenizer, ids, offsets, logits.data())).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  return cli::GuardedMain("slu_golden", [&] {
    if (argc != 4) throw std::runtime_error("usage: slu_golden encode|decode MODEL_DIR CASES");
    const std::string mode = argv[1];
    slu::PredictorOptions o = slu::ReadDeployConfig(argv[2]);
    if (mode == "encode") Encode(o, argv[3]);
    else if (mode == "decode") Decode(o, argv[3]);
    else throw std::runtime_error("unknown mode " + mode);
    return 0;
  });
}
