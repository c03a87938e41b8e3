// ERNIE 3.0 Tiny SLU demo on ONNX Runtime's C++ API (infer_demo) or Paddle Lite's light API (lite_demo, this file
// built with SLU_LITE): intent, confidence and slots for each query, one JSON line per query.
//   ./infer_demo --model_dir output/nano --text 来一首周华健的花心
//   ./infer_demo --model_dir output/nano --input_file queries.txt --batch_size 8
//   ./infer_demo --model_dir output/nano_context --context 导航到古田 --context 换一条路线 --text 不去了
// Dialogue context, for a model exported with context_turns > 0 (one without ignores it): --context (repeatable,
// oldest first) gives the earlier turns of the --text queries; in a corpus-format --input_file, each query's are
// the queries before it in its session (as deploy/python/infer_demo.py and run_eval.py take them).
// model_dir holds deploy_config.json (the defaults: max length, vocabulary, label files), model.onnx
// (convert_to_onnx.py) and the files the manifest names. Timing: slu_bench. lite_demo takes the same flags but
// ONNX Runtime's session options, and runs --model_file (default <model_dir>/infer_model.arm.nb, slu/lite.py).
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#ifdef SLU_LITE
#include "lite_predictor.h"
#else
#include "ort_predictor.h"
#endif

namespace {

#ifdef SLU_LITE
using RuntimePredictor = slu::LitePredictor;
constexpr const char* kProgram = "lite_demo";
#else
using RuntimePredictor = slu::Predictor;
constexpr const char* kProgram = "infer_demo";
#endif

struct Args {
  cli::CommonArgs common;
  bool dump_ids = false;
};

void Usage() {
  std::cerr << "usage: " << kProgram << " " << cli::kCommonUsage << "\n       [--dump_ids]\n";
}

bool ParseArgs(int argc, char** argv, Args* a) {
  cli::FlagReader r(argc, argv);
  for (std::string k; r.Next(&k);) {
    if (cli::ParseCommonFlag(k, &r, &a->common)) continue;
    if (k == "--dump_ids") a->dump_ids = true;
    else if (k == "-h" || k == "--help") { Usage(); return false; }
    else throw std::runtime_error("unknown flag " + k);
  }
  cli::CheckCommonArgs(a->common);
#ifdef SLU_LITE
  if (!a->common.session_flag.empty())
    throw std::runtime_error(a->common.session_flag + " is an ONNX Runtime session option; lite_demo runs Paddle Lite");
#endif
  return true;
}

template <class T>
std::string JsonList(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t k = 0; k < v.size(); ++k) s += (k ? ", " : "") + std::to_string(v[k]);
  return s + "]";
}

// The Python demo's output line; --dump_ids adds the token ids (with context, their token types) and each token's
// slot label id.
std::string JsonLine(const std::string& query, const slu::Prediction& p, const slu::Pipeline& predictor,
                     bool dump_ids) {
  char conf[32];
  snprintf(conf, sizeof conf, "%.6f", p.confidence);
  std::string line = "{\"query\": \"" + slu::JsonEscape(query) + "\", \"intent\": \"" +
                     slu::JsonEscape(predictor.intent_labels()[p.intent]) + "\", \"confidence\": " + conf +
                     ", \"slot\": [";
  for (size_t k = 0; k < p.slots.size(); ++k) {
    const slu::Slot& s = p.slots[k];
    line += (k ? ", " : "") + std::string("{\"slot\": \"") + slu::JsonEscape(s.slot) + "\", \"entity\": \"" +
            slu::JsonEscape(s.entity) + "\", \"pos\": [" + std::to_string(s.begin) + ", " +
            std::to_string(s.end) + "]}";
  }
  line += "]";
  if (p.truncated) line += ", \"truncated\": true";
  if (dump_ids) {
    line += ", \"ids\": " + JsonList(p.ids);
    if (predictor.context_turns() > 0) line += ", \"token_type_ids\": " + JsonList(p.token_types);
    line += ", \"slot_ids\": " + JsonList(p.slot_ids);
  }
  return line + "}\n";
}

int Run(const Args& a) {
  slu::PredictorOptions options = cli::ResolveOptions(a.common);
#ifdef SLU_LITE
  if (a.common.model_file.empty()) options.model_file = a.common.model_dir + "/infer_model.arm.nb";
#endif
  RuntimePredictor predictor(options);
  cli::WarnUnusedContext(predictor, a.common);
  auto queries = cli::ReadQueries(a.common);
  size_t next = 0;
  for (const auto& batch : cli::MakeBatches(queries, a.common.batch_size)) {
    for (const auto& p : predictor.Predict(batch.queries, batch.contexts)) {
      const cli::Query& q = queries[next++];
      std::string line = JsonLine(q.text, p, predictor, a.dump_ids);
      std::fwrite(line.data(), 1, line.size(), stdout);
      if (p.truncated)
        std::cerr << "warning: " << q.where << ": query longer than " << predictor.max_length() - 2
                  << " tokens, truncated\n";
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::GuardedMain(kProgram, [&] {
    Args a;
    return ParseArgs(argc, argv, &a) ? Run(a) : 0;
  });
}
