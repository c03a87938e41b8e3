// slu_bench: latency, throughput and memory of slu::Predictor on a set of queries, as benchmarks/run.py
// measures the Python backends. --repeat N passes over the queries in batches; the first is a warm-up and
// not timed. Each call (one batch) is timed end to end (tokenizer + Session::Run + decoding), and the
// tokenizer and Session::Run alone.
//   ./slu_bench --model_dir output/nano --input_file queries.txt --repeat 4 --stats_json stats.json
// Instruction counts of the timed Session::Run calls alone, on every thread (repeatable on a loaded machine),
// where valgrind's callgrind.h was found at build time (benchmarks/ort_options.py runs it):
//   valgrind --tool=callgrind --instr-atstart=no ./slu_bench --model_dir ... --repeat 2
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#include "ort_predictor.h"

// Under callgrind with --instr-atstart=no (and collection on at start, callgrind's default), instructions are
// counted during the timed passes only: on this thread inside Session::Run alone (collection is per thread:
// CALLGRIND_TOGGLE_COLLECT), on ONNX Runtime's own threads throughout, which work only inside Session::Run (the
// parallel execution mode runs the graph on its inter-op threads; with 1 intra-op thread and sequential
// execution there are none). With --collect-atstart=no this thread would count everything but Session::Run.
// The requests are no-ops outside valgrind, and absent without its headers.
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define SLU_HAVE_CALLGRIND 1
#endif
#endif
#ifndef SLU_HAVE_CALLGRIND
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#define CALLGRIND_TOGGLE_COLLECT
#endif

namespace {

struct Args {
  cli::CommonArgs common;
  int repeat = 3;
  std::string stats_json;
};

void Usage() {
  std::cerr << "usage: slu_bench " << cli::kCommonUsage << "\n       [--repeat N] [--stats_json F]\n";
}

bool ParseArgs(int argc, char** argv, Args* a) {
  cli::FlagReader r(argc, argv);
  for (std::string k; r.Next(&k);) {
    if (cli::ParseCommonFlag(k, &r, &a->common)) continue;
    if (k == "--repeat") a->repeat = r.PositiveInt();
    else if (k == "--stats_json") a->stats_json = r.Value();
    else if (k == "-h" || k == "--help") { Usage(); return false; }
    else throw std::runtime_error("unknown flag " + k);
  }
  cli::CheckCommonArgs(a->common);
  if (a->repeat < 2) throw std::runtime_error("--repeat must be at least 2 (the first pass is a warm-up)");
  return true;
}

// Nearest-rank percentile as benchmarks/run.py takes it: sorted[floor(n * q)], q in [0, 1).
double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(v.size() * q))];
}

double Median(std::vector<double> v) { return Percentile(std::move(v), 0.5); }

// A kB field of a /proc file ("Pss:  1234 kB"), in MiB; -1 when absent.
double ProcMiB(const char* path, const std::string& key) {
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);) {
    if (line.compare(0, key.size() + 1, key + ":") == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  }
  return -1;
}

// Milliseconds of each timed call (one batch): end to end, tokenizer, Session::Run.
struct CallTimes {
  std::vector<double> total, tokenizer, runtime;
};

double Ms(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

void TimedCall(slu::Predictor* predictor, const cli::QueryBatch& batch, CallTimes* t) {
  auto t0 = std::chrono::steady_clock::now();
  auto encodings = predictor->Encode(batch.queries, batch.contexts);
  auto t1 = std::chrono::steady_clock::now();
  CALLGRIND_TOGGLE_COLLECT;  // this thread: on for Session::Run alone
  auto logits = predictor->Run(encodings);
  CALLGRIND_TOGGLE_COLLECT;
  auto t2 = std::chrono::steady_clock::now();
  predictor->Decode(batch.queries, std::move(encodings), logits);
  auto t3 = std::chrono::steady_clock::now();
  t->total.push_back(Ms(t0, t3));
  t->tokenizer.push_back(Ms(t0, t1));
  t->runtime.push_back(Ms(t1, t2));
}

void Append(const CallTimes& from, CallTimes* to) {
  to->total.insert(to->total.end(), from.total.begin(), from.total.end());
  to->tokenizer.insert(to->tokenizer.end(), from.tokenizer.begin(), from.tokenizer.end());
  to->runtime.insert(to->runtime.end(), from.runtime.begin(), from.runtime.end());
}

struct Stats {
  size_t queries = 0, timed_passes = 0;
  std::vector<double> pass_p50, pass_p90;  // per timed pass, over its calls
  CallTimes calls;                         // every timed call
};

Stats Measure(slu::Predictor* predictor, const std::vector<cli::QueryBatch>& batches, size_t queries, int repeat) {
  Stats s;
  s.queries = queries;
  for (const auto& batch : batches) predictor->Predict(batch.queries, batch.contexts);  // warm-up
  CALLGRIND_START_INSTRUMENTATION;  // every thread counts from here (ONNX Runtime's inter-op threads, if any)...
  CALLGRIND_TOGGLE_COLLECT;         // ...but this one only inside Session::Run (TimedCall)
  for (int rep = 1; rep < repeat; ++rep) {
    CallTimes pass;
    for (const auto& batch : batches) TimedCall(predictor, batch, &pass);
    s.pass_p50.push_back(Percentile(pass.total, 0.5));
    s.pass_p90.push_back(Percentile(pass.total, 0.9));
    Append(pass, &s.calls);
    ++s.timed_passes;
  }
  CALLGRIND_TOGGLE_COLLECT;
  CALLGRIND_STOP_INSTRUMENTATION;
  return s;
}

// benchmarks/run.py's keys; memory is this process's, which loaded the model and answered every query.
std::string StatsJson(const Stats& s, const Args& a) {
  double total_ms = 0;
  for (double ms : s.calls.total) total_ms += ms;
  char buf[768];
  snprintf(buf, sizeof buf,
           "{\"queries\": %zu, \"timed_passes\": %zu, \"batch_size\": %d, \"cpu_num_threads\": %d, "
           "\"p50_ms\": %.6f, \"p90_ms\": %.6f, \"tokenizer_ms\": %.6f, \"runtime_ms\": %.6f, "
           "\"queries_per_s\": %.3f, \"pss_mib\": %.1f, \"rss_mib\": %.1f, \"peak_rss_mib\": %.1f}\n",
           s.queries, s.timed_passes, a.common.batch_size, a.common.cpu_num_threads, Median(s.pass_p50),
           Median(s.pass_p90), Median(s.calls.tokenizer), Median(s.calls.runtime),
           total_ms > 0 ? 1000.0 * s.queries * s.timed_passes / total_ms : 0.0,
           ProcMiB("/proc/self/smaps_rollup", "Pss"), ProcMiB("/proc/self/smaps_rollup", "Rss"),
           ProcMiB("/proc/self/status", "VmHWM"));
  return buf;
}

int Run(const Args& a) {
  slu::Predictor predictor(cli::ResolveOptions(a.common));
  cli::WarnUnusedContext(predictor, a.common);
  auto queries = cli::ReadQueries(a.common);
  if (queries.empty()) throw std::runtime_error("no queries to time (--text, --input_file)");
  std::ofstream stats_file;  // opened first: a bad path fails before the measurement
  if (!a.stats_json.empty()) {
    stats_file.open(a.stats_json);
    if (!stats_file) throw std::runtime_error("cannot write " + a.stats_json);
  }
  Stats s = Measure(&predictor, cli::MakeBatches(queries, a.common.batch_size), queries.size(), a.repeat);
  std::string json = StatsJson(s, a);
  std::printf("%zu queries x %zu timed passes, batch %d, %d thread(s): per call p50 %.4f ms, p90 %.4f ms "
              "(tokenizer %.4f ms, Session::Run %.4f ms)\n", s.queries, s.timed_passes, a.common.batch_size,
              a.common.cpu_num_threads, Median(s.pass_p50), Median(s.pass_p90), Median(s.calls.tokenizer),
              Median(s.calls.runtime));
  if (stats_file.is_open() && !(stats_file << json && stats_file.flush()))
    throw std::runtime_error("cannot write " + a.stats_json);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::GuardedMain("slu_bench", [&] {
    Args a;
    return ParseArgs(argc, argv, &a) ? Run(a) : 0;
  });
}
