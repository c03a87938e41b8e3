// ERNIE 3.0 Tiny SLU demo on ONNX Runtime's C++ API: intent, confidence and slots for each query.
//   ./infer_demo --model_dir output/nano --text 来一首周华健的花心
//   ./infer_demo --model_dir output/nano --input_file queries.txt --batch_size 8
// model_dir holds model.onnx (convert_to_onnx.py), vocab.txt, intent_label.txt and slot_label.txt.
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "slu.h"

namespace {

struct Args {
  std::string model_dir, model_file, vocab_path, slot_label_path, intent_label_path, input_file, stats_json;
  std::vector<std::string> texts;
  int batch_size = 1, max_length = 16, cpu_num_threads = 1, repeat = 1;
  bool dump_ids = false;
};

void Usage() {
  std::cerr << "usage: infer_demo --model_dir DIR [--model_file F] [--vocab_path F] [--slot_label_path F]\n"
               "       [--intent_label_path F] [--batch_size N] [--max_length N] [--cpu_num_threads N]\n"
               "       [--text QUERY]... [--input_file F] [--dump_ids] [--repeat N] [--stats_json F]\n";
}

bool FileExists(const std::string& p) { return std::ifstream(p).good(); }

struct Query {
  std::string where, text;
  std::vector<uint32_t> cps;
};

// Queries from --text and --input_file; empty lines and invalid UTF-8 are reported and skipped.
std::vector<Query> ReadQueries(const Args& a) {
  std::vector<Query> qs;
  size_t bad;
  for (size_t k = 0; k < a.texts.size(); ++k) {
    Query q{"--text " + std::to_string(k + 1), a.texts[k], {}};
    if (!slu::DecodeUtf8(q.text, &q.cps, &bad)) {
      std::cerr << "warning: " << q.where << ": not valid UTF-8 (byte " << bad << "), skipped\n";
    } else if (q.text.find_first_not_of(" \t") == std::string::npos) {
      std::cerr << "warning: " << q.where << ": empty query, skipped\n";
    } else {
      qs.push_back(q);
    }
  }
  if (!a.input_file.empty()) {
    std::ifstream f(a.input_file, std::ios::binary);
    if (!f) throw std::runtime_error("input file not found: " + a.input_file);
    std::string line;
    int n = 0;
    while (std::getline(f, line)) {
      ++n;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::string where = a.input_file + ":" + std::to_string(n);
      if (line.find_first_not_of(" \t") == std::string::npos) {
        std::cerr << "warning: " << where << ": empty line, skipped\n";
        continue;
      }
      std::vector<std::string> cols;
      std::stringstream ss(line);
      for (std::string c; std::getline(ss, c, '\t');) cols.push_back(c);
      std::string text = cols.size() == 4 ? cols[1] : line;
      Query q{where, text, {}};
      if (!slu::DecodeUtf8(text, &q.cps, &bad)) {
        std::cerr << "warning: " << where << ": not valid UTF-8 (byte " << bad << "), skipped\n";
        continue;
      }
      qs.push_back(q);
    }
  }
  return qs;
}

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&](std::string* out) {
      if (i + 1 >= argc) throw std::runtime_error("missing value for " + k);
      *out = argv[++i];
    };
    auto ival = [&](int* out) {
      std::string v;
      val(&v);
      try { *out = std::stoi(v); } catch (...) { throw std::runtime_error(k + " needs a number, not '" + v + "'"); }
      if (*out < 1) throw std::runtime_error(k + " must be at least 1");
    };
    if (k == "--model_dir") val(&a->model_dir);
    else if (k == "--model_file") val(&a->model_file);
    else if (k == "--vocab_path") val(&a->vocab_path);
    else if (k == "--slot_label_path") val(&a->slot_label_path);
    else if (k == "--intent_label_path") val(&a->intent_label_path);
    else if (k == "--input_file") val(&a->input_file);
    else if (k == "--text") { std::string t; val(&t); a->texts.push_back(t); }
    else if (k == "--batch_size") ival(&a->batch_size);
    else if (k == "--max_length") ival(&a->max_length);
    else if (k == "--cpu_num_threads") ival(&a->cpu_num_threads);
    else if (k == "--repeat") ival(&a->repeat);
    else if (k == "--stats_json") val(&a->stats_json);
    else if (k == "--dump_ids") a->dump_ids = true;
    else if (k == "-h" || k == "--help") { Usage(); return false; }
    else throw std::runtime_error("unknown flag " + k);
  }
  if (a->model_dir.empty() && a->model_file.empty()) throw std::runtime_error("--model_dir is required");
  auto def = [&](std::string* p, const char* name) { if (p->empty()) *p = a->model_dir + "/" + name; };
  def(&a->model_file, "model.onnx");
  def(&a->vocab_path, "vocab.txt");
  def(&a->slot_label_path, "slot_label.txt");
  def(&a->intent_label_path, "intent_label.txt");
  if (a->max_length < 3) throw std::runtime_error("--max_length must be at least 3");
  return true;
}

// Nearest-rank percentile as benchmarks/run.py takes it: sorted[floor(n * q)], q in [0, 1).
double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(v.size() * q))];
}

double Median(std::vector<double> v) { return Percentile(std::move(v), 0.5); }

// kB fields of a /proc file ("Pss:  1234 kB"), in MiB; -1 when absent.
double ProcMiB(const char* path, const std::string& key) {
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);) {
    if (line.compare(0, key.size() + 1, key + ":") == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  }
  return -1;
}

int Run(const Args& a) {
  if (!FileExists(a.model_file)) throw std::runtime_error("model file not found: " + a.model_file);
  slu::Tokenizer tok(a.vocab_path);
  auto slot_labels = slu::ReadLabels(a.slot_label_path);
  auto intent_labels = slu::ReadLabels(a.intent_label_path);
  auto queries = ReadQueries(a);

  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "slu");
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(a.cpu_num_threads);
  so.SetInterOpNumThreads(1);
  Ort::Session session(env, a.model_file.c_str(), so);
  Ort::AllocatorWithDefaultOptions alloc;
  auto in_name = session.GetInputNameAllocated(0, alloc);
  auto out0 = session.GetOutputNameAllocated(0, alloc), out1 = session.GetOutputNameAllocated(1, alloc);
  const char* in_names[] = {in_name.get()};
  const char* out_names[] = {out0.get(), out1.get()};
  auto elem = session.GetInputTypeInfo(0).GetTensorTypeAndShapeInfo().GetElementType();
  bool int32_input = elem == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
  if (!int32_input && elem != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64)
    throw std::runtime_error(a.model_file + ": input must be int32 or int64 token ids");
  Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);

  double total_ms = 0, tok_ms = 0;
  size_t answered = 0;
  // per call (one batch), for --stats_json: end to end, tokenizer, session.Run; p50/p90 per pass
  std::vector<double> pass_p50, pass_p90, call_tok, call_run;
  std::string output;
  for (int rep = 0; rep < a.repeat; ++rep) {
    output.clear();
    std::vector<double> call_total;
    for (size_t s = 0; s < queries.size(); s += a.batch_size) {
      size_t e = std::min(queries.size(), s + static_cast<size_t>(a.batch_size));
      auto t0 = std::chrono::steady_clock::now();
      std::vector<slu::Encoding> encs;
      size_t T = 0;
      for (size_t i = s; i < e; ++i) {
        encs.push_back(tok.Encode(queries[i].cps, a.max_length));
        T = std::max(T, encs.back().ids.size());
      }
      auto t1 = std::chrono::steady_clock::now();
      int64_t B = static_cast<int64_t>(e - s);
      std::vector<int64_t> ids64(B * T, tok.pad_id());
      for (int64_t b = 0; b < B; ++b) std::copy(encs[b].ids.begin(), encs[b].ids.end(), ids64.begin() + b * T);
      std::vector<int32_t> ids32(ids64.begin(), ids64.end());
      std::vector<int64_t> shape = {B, static_cast<int64_t>(T)};
      Ort::Value input = int32_input
          ? Ort::Value::CreateTensor<int32_t>(mem, ids32.data(), ids32.size(), shape.data(), 2)
          : Ort::Value::CreateTensor<int64_t>(mem, ids64.data(), ids64.size(), shape.data(), 2);
      auto r0 = std::chrono::steady_clock::now();
      auto outs = session.Run(Ort::RunOptions{nullptr}, in_names, &input, 1, out_names, 2);
      auto r1 = std::chrono::steady_clock::now();
      const float* intent = outs[0].GetTensorData<float>();
      const float* slots = outs[1].GetTensorData<float>();
      size_t n_int = outs[0].GetTensorTypeAndShapeInfo().GetShape()[1];
      size_t n_slot = outs[1].GetTensorTypeAndShapeInfo().GetShape()[2];
      if (n_int != intent_labels.size() || n_slot != slot_labels.size())
        throw std::runtime_error("model outputs " + std::to_string(n_int) + " intents / " + std::to_string(n_slot) +
                                 " slot labels, the label files have " + std::to_string(intent_labels.size()) +
                                 " / " + std::to_string(slot_labels.size()));
      for (int64_t b = 0; b < B; ++b) {
        const float* il = intent + b * n_int;
        size_t best = std::max_element(il, il + n_int) - il;
        double z = 0;
        for (size_t k = 0; k < n_int; ++k) z += std::exp(static_cast<double>(il[k]) - il[best]);
        std::vector<int> sids(encs[b].ids.size());
        for (size_t t = 0; t < sids.size(); ++t) {
          const float* sl = slots + (b * T + t) * n_slot;
          sids[t] = static_cast<int>(std::max_element(sl, sl + n_slot) - sl);
        }
        const Query& q = queries[s + b];
        auto found = slu::DecodeSlots(q.cps, encs[b].offsets, sids, slot_labels);
        char conf[32];
        snprintf(conf, sizeof conf, "%.6f", 1.0 / z);
        std::string line = "{\"query\": \"" + slu::JsonEscape(q.text) + "\", \"intent\": \"" +
                           slu::JsonEscape(intent_labels[best]) + "\", \"confidence\": " + conf + ", \"slot\": [";
        for (size_t k = 0; k < found.size(); ++k) {
          line += (k ? ", " : "") + std::string("{\"slot\": \"") + slu::JsonEscape(found[k].slot) +
                  "\", \"entity\": \"" + slu::JsonEscape(found[k].entity) + "\", \"pos\": [" +
                  std::to_string(found[k].begin) + ", " + std::to_string(found[k].end) + "]}";
        }
        line += "]";
        if (encs[b].truncated) line += ", \"truncated\": true";
        if (a.dump_ids) {
          line += ", \"ids\": [";
          for (size_t k = 0; k < encs[b].ids.size(); ++k) line += (k ? ", " : "") + std::to_string(encs[b].ids[k]);
          line += "], \"slot_ids\": [";
          for (size_t k = 0; k < sids.size(); ++k) line += (k ? ", " : "") + std::to_string(sids[k]);
          line += "]";
        }
        output += line + "}\n";
        if (rep == 0 && encs[b].truncated)
          std::cerr << "warning: " << q.where << ": query longer than " << a.max_length - 2
                    << " tokens, truncated\n";
      }
      auto t2 = std::chrono::steady_clock::now();
      if (rep > 0 || a.repeat == 1) {
        using ms = std::chrono::duration<double, std::milli>;
        tok_ms += ms(t1 - t0).count();
        total_ms += ms(t2 - t0).count();
        answered += B;
        call_total.push_back(ms(t2 - t0).count());
        call_tok.push_back(ms(t1 - t0).count());
        call_run.push_back(ms(r1 - r0).count());
      }
    }
    if (!call_total.empty()) {
      pass_p50.push_back(Percentile(call_total, 0.5));
      pass_p90.push_back(Percentile(call_total, 0.9));
    }
  }
  std::fwrite(output.data(), 1, output.size(), stdout);
  if (a.repeat > 1 && answered)
    std::fprintf(stderr, "latency: %.4f ms per query end to end (tokenizer %.4f ms), %zu queries, batch %d, "
                 "%d thread(s), first pass excluded\n", total_ms / answered, tok_ms / answered, answered,
                 a.batch_size, a.cpu_num_threads);
  if (!a.stats_json.empty()) {
    // memory of this process, which loaded the model and answered every query
    char buf[768];
    snprintf(buf, sizeof buf,
             "{\"queries\": %zu, \"timed_passes\": %zu, \"batch_size\": %d, \"cpu_num_threads\": %d, "
             "\"p50_ms\": %.6f, \"p90_ms\": %.6f, \"tokenizer_ms\": %.6f, \"runtime_ms\": %.6f, "
             "\"queries_per_s\": %.3f, \"pss_mib\": %.1f, \"rss_mib\": %.1f, \"peak_rss_mib\": %.1f}\n",
             queries.size(), pass_p50.size(), a.batch_size, a.cpu_num_threads, Median(pass_p50), Median(pass_p90),
             Median(call_tok), Median(call_run), total_ms > 0 ? 1000.0 * answered / total_ms : 0.0,
             ProcMiB("/proc/self/smaps_rollup", "Pss"), ProcMiB("/proc/self/smaps_rollup", "Rss"),
             ProcMiB("/proc/self/status", "VmHWM"));
    std::ofstream f(a.stats_json);
    if (!(f << buf)) throw std::runtime_error("cannot write " + a.stats_json);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  try {
    if (!ParseArgs(argc, argv, &a)) return 0;
    return Run(a);
  } catch (const Ort::Exception& e) {
    std::cerr << "infer_demo: error: ONNX Runtime: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "infer_demo: error: " << e.what() << "\n";
  }
  return 1;
}
