// ERNIE 3.0 Tiny SLU demo on ONNX Runtime's C++ API: intent, confidence and slots for each query, one JSON line
// per query.
//   ./infer_demo --model_dir output/nano --text 来一首周华健的花心
//   ./infer_demo --model_dir output/nano --input_file queries.txt --batch_size 8
// model_dir holds deploy_config.json (the defaults: max length, vocabulary, label files), model.onnx
// (convert_to_onnx.py) and the files the manifest names. Timing: slu_bench.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#include "slu.h"

namespace {

struct Args {
  cli::CommonArgs common;
  bool dump_ids = false;
};

void Usage() {
  std::cerr << "usage: infer_demo " << cli::kCommonUsage << "\n       [--dump_ids]\n";
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
  return true;
}

template <class T>
std::string JsonList(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t k = 0; k < v.size(); ++k) s += (k ? ", " : "") + std::to_string(v[k]);
  return s + "]";
}

// The Python demo's output line; --dump_ids adds the token ids and each token's slot label id.
std::string JsonLine(const std::string& query, const slu::Prediction& p, const slu::Predictor& predictor,
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
  if (dump_ids) line += ", \"ids\": " + JsonList(p.ids) + ", \"slot_ids\": " + JsonList(p.slot_ids);
  return line + "}\n";
}

int Run(const Args& a) {
  slu::Predictor predictor(cli::ResolveOptions(a.common));
  auto queries = cli::ReadQueries(a.common);
  size_t next = 0;
  for (const auto& batch : cli::MakeBatches(queries, a.common.batch_size)) {
    for (const auto& p : predictor.Predict(batch)) {
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
  return cli::GuardedMain("infer_demo", [&] {
    Args a;
    return ParseArgs(argc, argv, &a) ? Run(a) : 0;
  });
}
