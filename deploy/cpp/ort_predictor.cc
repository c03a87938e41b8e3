#include "ort_predictor.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace slu {

namespace {

Ort::AllocatedStringPtr OutputName(const Ort::Session& s, size_t k, const std::string& model_file) {
  if (s.GetOutputCount() < 2) throw std::runtime_error(model_file + ": the model must output intent and slot logits");
  return s.GetOutputNameAllocated(k, Ort::AllocatorWithDefaultOptions());
}

Ort::SessionOptions MakeSessionOptions(int cpu_num_threads, const SessionSettings& s) {
  static const GraphOptimizationLevel kLevels[] = {ORT_DISABLE_ALL, ORT_ENABLE_BASIC, ORT_ENABLE_EXTENDED,
                                                   ORT_ENABLE_ALL};
  static const ExecutionMode kModes[] = {ORT_SEQUENTIAL, ORT_PARALLEL};
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(cpu_num_threads);
  so.SetInterOpNumThreads(s.inter_op_threads);
  so.SetGraphOptimizationLevel(kLevels[GraphOptimizationIndex(s.graph_optimization)]);
  so.SetExecutionMode(kModes[ExecutionModeIndex(s.execution_mode)]);
  if (s.mem_pattern) so.EnableMemPattern();
  else so.DisableMemPattern();
  if (s.cpu_arena) so.EnableCpuMemArena();
  else so.DisableCpuMemArena();
  if (!s.optimized_model_file.empty()) so.SetOptimizedModelFilePath(s.optimized_model_file.c_str());
  for (const auto& kv : s.config) so.AddConfigEntry(kv.first.c_str(), kv.second.c_str());
  return so;
}

Ort::Session MakeSession(const Ort::Env& env, const std::string& model_file, const PredictorOptions& o) {
  try {
    return Ort::Session(env, model_file.c_str(), MakeSessionOptions(o.cpu_num_threads, o.session));
  } catch (const Ort::Exception& e) {
    throw std::runtime_error(std::string("ONNX Runtime: ") + e.what());
  }
}

// A [B, T] tensor of the rows of `rows`, padded with `pad`, as int32 or int64; `buffer` holds its data.
template <class T>
Ort::Value Padded(const std::vector<Encoding>& encodings, std::vector<int64_t> Encoding::*rows, int64_t pad,
                  size_t width, std::vector<T>* buffer) {
  PadRows(encodings, rows, pad, width, buffer);
  int64_t shape[] = {static_cast<int64_t>(encodings.size()), static_cast<int64_t>(width)};
  Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  return Ort::Value::CreateTensor<T>(mem, buffer->data(), buffer->size(), shape, 2);
}

}  // namespace

Predictor::Predictor(const PredictorOptions& o)
    : Pipeline(o),
      env_(ORT_LOGGING_LEVEL_WARNING, "slu"),
      session_(MakeSession(env_, model_file_, o)),
      intent_name_(OutputName(session_, 0, model_file_)),
      slot_name_(OutputName(session_, 1, model_file_)) {
  CheckModelInputs(o);
}

// input_ids, and token_type_ids for a model with context (as the manifest's "inputs" lists them), of one integer
// type: the manifest's input_dtype.
void Predictor::CheckModelInputs(const PredictorOptions& o) {
  const size_t n = session_.GetInputCount();
  CheckInputCount(n, o.manifest);
  for (size_t k = 0; k < n; ++k) {
    auto elem = session_.GetInputTypeInfo(k).GetTensorTypeAndShapeInfo().GetElementType();
    bool int32 = elem == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    if (!int32 && elem != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64)
      throw std::runtime_error(o.model_file + ": input " + std::to_string(k) + " must be int32 or int64");
    if (k == 0) int32_input_ = int32;
    if (int32 != int32_input_)
      throw std::runtime_error(o.model_file + ": token_type_ids and input_ids have different integer types");
    input_names_.push_back(session_.GetInputNameAllocated(k, Ort::AllocatorWithDefaultOptions()));
  }
  // paddle2onnx 2.x may list token_type_ids first: the ids are fed first, so their name goes first
  if (input_names_.size() > 1 && std::string(input_names_[1].get()) == "input_ids")
    std::swap(input_names_[0], input_names_[1]);
  std::string dtype = int32_input_ ? "int32" : "int64";
  if (!o.input_dtype.empty() && o.input_dtype != dtype)
    throw std::runtime_error(o.model_file + " takes " + dtype + " input ids, but " + o.manifest +
                             " says input_dtype " + o.input_dtype);
}

std::vector<Prediction> Predictor::Predict(const Batch& queries, const std::vector<Context>& contexts) {
  auto encodings = Encode(queries, contexts);
  auto logits = Run(encodings);
  return Decode(queries, std::move(encodings), logits);
}

std::vector<Ort::Value> Predictor::Run(const std::vector<Encoding>& encodings) {
  if (encodings.empty()) return {};
  const size_t T = LongestEncoding(encodings);
  std::vector<int64_t> ids64, types64;
  std::vector<int32_t> ids32, types32;
  std::vector<Ort::Value> inputs;
  if (int32_input_) {
    inputs.push_back(Padded(encodings, &Encoding::ids, tokenizer_.pad_id(), T, &ids32));
    if (input_names_.size() > 1) inputs.push_back(Padded(encodings, &Encoding::token_types, 0, T, &types32));
  } else {
    inputs.push_back(Padded(encodings, &Encoding::ids, tokenizer_.pad_id(), T, &ids64));
    if (input_names_.size() > 1) inputs.push_back(Padded(encodings, &Encoding::token_types, 0, T, &types64));
  }
  std::vector<const char*> in_names;
  for (const auto& name : input_names_) in_names.push_back(name.get());
  const char* out_names[] = {intent_name_.get(), slot_name_.get()};
  try {
    return session_.Run(Ort::RunOptions{nullptr}, in_names.data(), inputs.data(), inputs.size(), out_names, 2);
  } catch (const Ort::Exception& e) {
    throw std::runtime_error(std::string("ONNX Runtime: ") + e.what());
  }
}

std::vector<Prediction> Predictor::Decode(const Batch& queries, std::vector<Encoding> encodings,
                                          const std::vector<Ort::Value>& logits) const {
  if (encodings.empty()) return {};
  auto intent_shape = logits[0].GetTensorTypeAndShapeInfo().GetShape();
  auto slot_shape = logits[1].GetTensorTypeAndShapeInfo().GetShape();
  LogitsView view;
  view.intent = logits[0].GetTensorData<float>();
  view.slots = logits[1].GetTensorData<float>();
  view.batch = intent_shape[0], view.num_intents = intent_shape[1];
  view.seq = slot_shape[1], view.num_slot_labels = slot_shape[2];
  return Pipeline::Decode(queries, std::move(encodings), view);
}

}  // namespace slu
