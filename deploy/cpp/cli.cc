#include "cli.h"

#include <fstream>
#include <iostream>
#include <stdexcept>

namespace cli {

bool FlagReader::Next(std::string* flag) {
  if (++i_ >= argc_) return false;
  *flag = flag_ = argv_[i_];
  return true;
}

std::string FlagReader::Value() {
  if (i_ + 1 >= argc_) throw std::runtime_error("missing value for " + flag_);
  return argv_[++i_];
}

int FlagReader::PositiveInt() {
  std::string v = Value();
  int n;
  try {
    n = std::stoi(v);
  } catch (...) {
    throw std::runtime_error(flag_ + " needs a number, not '" + v + "'");
  }
  if (n < 1) throw std::runtime_error(flag_ + " must be at least 1");
  return n;
}

bool FlagReader::OnOff() {
  std::string v = Value();
  if (v != "on" && v != "off") throw std::runtime_error(flag_ + " must be on or off, not '" + v + "'");
  return v == "on";
}

namespace {

// ONNX Runtime's session options (--graph_optimization ...): false when `k` is not one of them.
bool ParseSessionFlag(const std::string& k, FlagReader* r, slu::SessionSettings* s) {
  if (k == "--graph_optimization" || k == "--execution_mode") {
    std::string v = r->Value();
    try {  // refused here, naming the flag, rather than when the session is made
      if (k == "--graph_optimization") slu::GraphOptimizationIndex(v), s->graph_optimization = v;
      else slu::ExecutionModeIndex(v), s->execution_mode = v;
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(k + ": " + e.what());
    }
  }
  else if (k == "--inter_op_threads") s->inter_op_threads = r->PositiveInt();
  else if (k == "--mem_pattern") s->mem_pattern = r->OnOff();
  else if (k == "--cpu_arena") s->cpu_arena = r->OnOff();
  else if (k == "--optimized_model_file") s->optimized_model_file = r->Value();
  else if (k == "--session_config") {
    std::string v = r->Value();
    size_t eq = v.find('=');
    if (eq == 0 || eq == std::string::npos) throw std::runtime_error("--session_config needs KEY=VALUE, not '" + v + "'");
    s->config.emplace_back(v.substr(0, eq), v.substr(eq + 1));
  }
  else return false;
  return true;
}

}  // namespace

bool ParseCommonFlag(const std::string& k, FlagReader* r, CommonArgs* a) {
  if (k == "--model_dir") a->model_dir = r->Value();
  else if (k == "--model_file") a->model_file = r->Value();
  else if (k == "--vocab_path") a->vocab_path = r->Value();
  else if (k == "--slot_label_path") a->slot_label_path = r->Value();
  else if (k == "--intent_label_path") a->intent_label_path = r->Value();
  else if (k == "--input_file") a->input_file = r->Value();
  else if (k == "--text") a->texts.push_back(r->Value());
  else if (k == "--context") a->contexts.push_back(r->Value());
  else if (k == "--batch_size") a->batch_size = r->PositiveInt();
  else if (k == "--max_seq_length") a->max_length = r->PositiveInt();
  else if (k == "--cpu_num_threads") a->cpu_num_threads = r->PositiveInt();
  else if (ParseSessionFlag(k, r, &a->session)) a->session_flag = k;
  else return false;
  return true;
}

void CheckCommonArgs(const CommonArgs& a) {
  if (a.model_dir.empty()) throw std::runtime_error("--model_dir is required");
}

slu::PredictorOptions ResolveOptions(const CommonArgs& a) {
  slu::PredictorOptions o = slu::ReadDeployConfig(a.model_dir);
  auto set = [](std::string* option, const std::string& flag) { if (!flag.empty()) *option = flag; };
  set(&o.model_file, a.model_file);
  set(&o.vocab_path, a.vocab_path);
  set(&o.intent_label_path, a.intent_label_path);
  set(&o.slot_label_path, a.slot_label_path);
  if (a.max_length) o.max_length = a.max_length;
  o.cpu_num_threads = a.cpu_num_threads;
  o.session = a.session;
  return o;
}

namespace {

bool Blank(const std::string& s) { return s.find_first_not_of(" \t") == std::string::npos; }

// The query with its code points; false (and a warning) when it is not valid UTF-8.
bool Decode(const std::string& where, const std::string& text, Query* q) {
  *q = Query{where, text, {}, {}};
  size_t bad;
  if (slu::DecodeUtf8(text, &q->cps, &bad)) return true;
  std::cerr << "warning: " << where << ": not valid UTF-8 (byte " << bad << "), skipped\n";
  return false;
}

// A line's tab-separated columns, as Python's split("\t") gives them (empty ones kept).
std::vector<std::string> Columns(const std::string& line) {
  std::vector<std::string> cols;
  for (size_t start = 0;;) {
    size_t tab = line.find('\t', start);
    cols.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return cols;
    start = tab + 1;
  }
}

// The --context turns, decoded; a turn that is blank or not valid UTF-8 is an error.
slu::Context ReadContext(const CommonArgs& a) {
  slu::Context context;
  for (size_t k = 0; k < a.contexts.size(); ++k) {
    const std::string where = "--context " + std::to_string(k + 1);
    std::vector<uint32_t> cps;
    size_t bad;
    if (!slu::DecodeUtf8(a.contexts[k], &cps, &bad))
      throw std::runtime_error(where + ": not valid UTF-8 (byte " + std::to_string(bad) + ")");
    if (Blank(a.contexts[k])) throw std::runtime_error(where + ": empty turn");
    context.push_back(std::move(cps));
  }
  return context;
}

}  // namespace

std::vector<Query> ReadQueries(const CommonArgs& a) {
  std::vector<Query> qs;
  Query q;
  const slu::Context text_context = ReadContext(a);
  for (size_t k = 0; k < a.texts.size(); ++k) {
    if (!Decode("--text " + std::to_string(k + 1), a.texts[k], &q)) continue;
    q.context = text_context;
    if (Blank(q.text)) std::cerr << "warning: " << q.where << ": empty query, skipped\n";
    else qs.push_back(q);
  }
  if (a.input_file.empty()) return qs;
  std::ifstream f(a.input_file, std::ios::binary);
  if (!f) throw std::runtime_error("input file not found: " + a.input_file);
  std::string line;
  // the session of the query before (none for a plain line) and the queries of that session so far
  int prev_line = -1;
  bool prev_corpus = false;
  std::string prev_session;
  slu::Context history;
  for (int n = 1; std::getline(f, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string where = a.input_file + ":" + std::to_string(n);
    if (Blank(line)) {
      std::cerr << "warning: " << where << ": empty line, skipped\n";
      continue;
    }
    std::vector<std::string> cols = Columns(line);
    const bool corpus = cols.size() == 4;
    if (!Decode(where, corpus ? cols[1] : line, &q)) continue;
    const std::string session = corpus ? cols[0] : "";
    if (prev_line != n - 1 || prev_corpus != corpus || prev_session != session) history.clear();
    if (corpus) q.context = history;
    history.push_back(q.cps);
    prev_line = n, prev_corpus = corpus, prev_session = session;
    qs.push_back(q);
  }
  return qs;
}

void WarnUnusedContext(const slu::Pipeline& predictor, const CommonArgs& a) {
  if (!a.contexts.empty() && predictor.context_turns() == 0)
    std::cerr << "warning: --context: the model has no dialogue context (context_turns 0 in its manifest), "
                 "ignored\n";
}

std::vector<QueryBatch> MakeBatches(const std::vector<Query>& queries, int batch_size) {
  std::vector<QueryBatch> batches;
  for (size_t i = 0; i < queries.size(); ++i) {
    if (i % batch_size == 0) batches.emplace_back();
    batches.back().queries.push_back(queries[i].cps);
    batches.back().contexts.push_back(queries[i].context);
  }
  return batches;
}

int GuardedMain(const char* program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
  }
  return 1;
}

}  // namespace cli
