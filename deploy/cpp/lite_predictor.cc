#include "lite_predictor.h"

#include <stdexcept>

namespace slu {

namespace lite = paddle::lite_api;

namespace {

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::shared_ptr<lite::PaddlePredictor> MakePredictor(const std::string& model_file, int threads) {
  if (EndsWith(model_file, ".x86.nb"))
    throw std::runtime_error(model_file + ": an x86 .nb; this program runs the arm one (<prefix>.arm.nb)");
  lite::MobileConfig config;
  config.set_model_from_file(model_file);
  config.set_threads(threads);
  config.set_power_mode(lite::LITE_POWER_NO_BIND);
  try {
    return lite::CreatePaddlePredictor<lite::MobileConfig>(config);
  } catch (const std::exception& e) {
    throw std::runtime_error(model_file + ": Paddle Lite: " + e.what());
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
    predictor_->Run();
  } catch (const std::exception& e) {
    throw std::runtime_error(model_file_ + ": Paddle Lite: " + e.what());
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
