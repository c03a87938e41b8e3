#include "lite_predictor.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace slu {

namespace lite = paddle::lite_api;

namespace {

// The paddlelite release whose optimizer writes the .nb files this library reads (requirements-legacy.txt; GitHub tag
// v2.13-rc, scripts/build_lite_arm.sh).
constexpr const char* kLiteRelease = "2.13rc0";

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Paddle Lite (built with its log, which gives its exceptions their details) writes its device information, and a
// warning that the .nb's opt version differs from its own empty one (built without git), on stderr at every load.
// While one of these lives, stderr goes to /dev/null, unless SLU_LITE_LOG is set. The .nb's release is checked
// instead through the <model>.version file that slu/lite.py writes beside it.
class QuietStderr {
 public:
  QuietStderr() {
    if (std::getenv("SLU_LITE_LOG")) return;
    std::fflush(stderr);
    saved_ = dup(2);
    const int null = open("/dev/null", O_WRONLY);
    if (saved_ >= 0 && null >= 0) dup2(null, 2);
    if (null >= 0) close(null);
  }
  ~QuietStderr() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
  }
  QuietStderr(const QuietStderr&) = delete;
  QuietStderr& operator=(const QuietStderr&) = delete;

 private:
  int saved_ = -1;
};

// Paddle Lite's exception text on one line: "Paddle-Lite C++ Exception: \n[F <time> <file>:<line> <function>] <what>"
// -> "<what>".
std::string LiteError(const std::exception& e) {
  std::string s = e.what();
  const std::string prefix = "Paddle-Lite C++ Exception:";
  if (s.compare(0, prefix.size(), prefix) == 0) s.erase(0, prefix.size());
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  const size_t start = s.find_first_not_of(' ');
  if (start == std::string::npos) return "an error without a message";
  const size_t header_end = s[start] == '[' ? s.find("] ", start) : std::string::npos;
  s.erase(0, header_end == std::string::npos ? start : header_end + 2);
  return s.substr(0, s.find_last_not_of(' ') + 1);
}

// <model>.version, when there, must name the release this library reads.
void CheckRelease(const std::string& model_file) {
  std::ifstream f(model_file + ".version");
  std::string release;
  if (!f || !(f >> release) || release == kLiteRelease) return;
  throw std::runtime_error(model_file + ": written by paddlelite " + release + " (" + model_file +
                           ".version), this Paddle Lite reads " + kLiteRelease + "'s: convert it again");
}

std::shared_ptr<lite::PaddlePredictor> MakePredictor(const std::string& model_file, int threads) {
  if (EndsWith(model_file, ".x86.nb"))
    throw std::runtime_error(model_file + ": an x86 .nb; this program runs the arm one (<prefix>.arm.nb)");
  CheckRelease(model_file);
  QuietStderr quiet;  // from MobileConfig's constructor on, which logs the device information
  lite::MobileConfig config;
  config.set_model_from_file(model_file);
  config.set_threads(threads);
  config.set_power_mode(lite::LITE_POWER_NO_BIND);
  try {
    return lite::CreatePaddlePredictor<lite::MobileConfig>(config);
  } catch (const std::exception& e) {
    throw std::runtime_error(model_file + ": Paddle Lite: " + LiteError(e));
  }
}

// An output of the shape `rank` asks for: [B, num_intents] or [B, T, num_slot_labels].
lite::shape_t OutputShape(const lite::Tensor& t, size_t rank, const std::string& what) {
  lite::shape_t shape = t.shape();
  if (shape.size() != rank)
    throw std::runtime_error("the model's " + what + " output has " + std::to_string(shape.size()) +
                             " dimensions, not " + std::to_string(rank));
  return shape;
}

}  // namespace

LitePredictor::LitePredictor(const PredictorOptions& o)
    : Pipeline(o), predictor_(MakePredictor(model_file_, o.cpu_num_threads)) {
  inputs_ = predictor_->GetInputNames().size();
  CheckInputCount(inputs_, o.manifest);
  if (predictor_->GetOutputNames().size() < 2)
    throw std::runtime_error(model_file_ + ": the model must output intent and slot logits");
  if (!o.input_dtype.empty() && o.input_dtype != "int32" && o.input_dtype != "int64")
    throw std::runtime_error(o.manifest + ": input_dtype must be int32 or int64, not " + o.input_dtype);
  int32_input_ = o.input_dtype == "int32";
}

void LitePredictor::SetInput(int k, const std::vector<Encoding>& encodings, std::vector<int64_t> Encoding::*rows,
                             int64_t pad, size_t width) {
  auto t = predictor_->GetInput(k);
  t->Resize({static_cast<int64_t>(encodings.size()), static_cast<int64_t>(width)});
  if (int32_input_) {
    std::vector<int32_t> buffer;
    PadRows(encodings, rows, pad, width, &buffer);
    std::copy(buffer.begin(), buffer.end(), t->mutable_data<int32_t>());
  } else {
    std::vector<int64_t> buffer;
    PadRows(encodings, rows, pad, width, &buffer);
    std::copy(buffer.begin(), buffer.end(), t->mutable_data<int64_t>());
  }
}

std::vector<Prediction> LitePredictor::Predict(const Batch& queries, const std::vector<Context>& contexts) {
  auto encodings = Encode(queries, contexts);
  if (encodings.empty()) return {};
  const size_t T = LongestEncoding(encodings);
  SetInput(0, encodings, &Encoding::ids, tokenizer_.pad_id(), T);
  if (inputs_ > 1) SetInput(1, encodings, &Encoding::token_types, 0, T);
  try {
    QuietStderr quiet;
    predictor_->Run();
  } catch (const std::exception& e) {
    throw std::runtime_error(model_file_ + ": Paddle Lite: " + LiteError(e));
  }
  auto intent = predictor_->GetOutput(0);
  auto slots = predictor_->GetOutput(1);
  lite::shape_t is = OutputShape(*intent, 2, "intent"), ss = OutputShape(*slots, 3, "slot");
  LogitsView view;
  view.intent = intent->data<float>();
  view.slots = slots->data<float>();
  view.batch = is[0], view.num_intents = is[1], view.seq = ss[1], view.num_slot_labels = ss[2];
  return Decode(queries, std::move(encodings), view);
}

}  // namespace slu
