// What infer_demo and slu_bench share: their common flags, the predictor options those give with the model
// directory's deploy_config.json, and the queries (--text, --input_file) in batches.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "slu.h"

namespace cli {

constexpr const char* kCommonUsage =
    "--model_dir DIR [--model_file F] [--vocab_path F] [--slot_label_path F] [--intent_label_path F]\n"
    "       [--batch_size N] [--max_seq_length N] [--cpu_num_threads N] [--text QUERY]... [--input_file F]\n"
    "       [--context TURN]... [--graph_optimization disable|basic|extended|all]\n"
    "       [--execution_mode sequential|parallel] [--inter_op_threads N] [--mem_pattern on|off]\n"
    "       [--cpu_arena on|off] [--optimized_model_file F] [--session_config KEY=VALUE]...";

struct CommonArgs {
  std::string model_dir, model_file, vocab_path, slot_label_path, intent_label_path, input_file;
  std::vector<std::string> texts;
  std::vector<std::string> contexts;  // --context: earlier turns of the dialogue, oldest first, for the --text queries
  int batch_size = 1, max_length = 0, cpu_num_threads = 1;  // max_length 0: the manifest's max_seq_length
  slu::SessionSettings session;  // --graph_optimization, --execution_mode, ... (ONNX Runtime's session options)
  std::string session_flag;      // the last of those flags given (none: empty)
};

// Walks argv; values and numbers are checked as they are taken. Errors throw std::runtime_error.
class FlagReader {
 public:
  FlagReader(int argc, char** argv) : argc_(argc), argv_(argv) {}
  bool Next(std::string* flag);  // false after the last argument
  std::string Value();           // the current flag's value
  int PositiveInt();             // the current flag's value as an integer >= 1
  bool OnOff();                  // the current flag's value: "on" or "off"

 private:
  int argc_, i_ = 0;
  char** argv_;
  std::string flag_;
};

// Takes `flag` (and its value) when it is one of the common flags; false otherwise.
bool ParseCommonFlag(const std::string& flag, FlagReader* r, CommonArgs* a);
// After parsing: --model_dir is required.
void CheckCommonArgs(const CommonArgs& a);

// The model directory's deploy_config.json, with the explicit flags on top.
slu::PredictorOptions ResolveOptions(const CommonArgs& a);

struct Query {
  std::string where, text;  // where: "--text 2" or "file:line", for warnings
  std::vector<uint32_t> cps;
  slu::Context context;     // the earlier turns of its dialogue, oldest first
};

// The --text queries (with the --context turns) then the --input_file lines: plain (no context), or the corpus'
// 4 tab-separated columns, whose sessions give the context (data.read_queries(path, with_context=True): the
// queries of the lines before it with the same session id, up to a blank or skipped line). Blank queries, blank
// lines and invalid UTF-8 are reported on stderr and skipped; a --context turn that is blank or not UTF-8 is an
// error.
std::vector<Query> ReadQueries(const CommonArgs& a);

// A warning on stderr when --context is given to a model without context (which ignores it).
void WarnUnusedContext(const slu::Pipeline& predictor, const CommonArgs& a);

struct QueryBatch {
  slu::Batch queries;
  std::vector<slu::Context> contexts;  // one per query
};

// Consecutive batches of at most batch_size queries.
std::vector<QueryBatch> MakeBatches(const std::vector<Query>& queries, int batch_size);

// A program's main: runs `body`, turning an exception into one line "<program>: error: ..." and exit code 1.
int GuardedMain(const char* program, const std::function<int()>& body);

}  // namespace cli
