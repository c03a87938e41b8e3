// slu::Predictor: the pipeline (slu.h) on an ONNX Runtime session (model.onnx, convert_to_onnx.py).
#pragma once
#include <onnxruntime_cxx_api.h>

#include <string>
#include <vector>

#include "slu.h"

namespace slu {

class Predictor : public Pipeline {
 public:
  // Loads the model, vocabulary and labels; throws std::runtime_error when they are missing or disagree with
  // the options' manifest (Pipeline's checks, the input dtype and the model's inputs against context_turns).
  // ONNX Runtime's own errors come as std::runtime_error("ONNX Runtime: ...").
  explicit Predictor(const PredictorOptions& options);

  std::vector<Prediction> Predict(const Batch& queries, const std::vector<Context>& contexts = {});

  // Predict's steps, for timing them apart: Encode (Pipeline), Session::Run on the padded ids (and token types),
  // decoding.
  std::vector<Ort::Value> Run(const std::vector<Encoding>& encodings);
  std::vector<Prediction> Decode(const Batch& queries, std::vector<Encoding> encodings,
                                 const std::vector<Ort::Value>& logits) const;

 private:
  void CheckModelInputs(const PredictorOptions& o);

  Ort::Env env_;
  Ort::Session session_;
  std::vector<Ort::AllocatedStringPtr> input_names_;  // input_ids, and token_type_ids with context
  Ort::AllocatedStringPtr intent_name_, slot_name_;
  bool int32_input_ = false;
};

}  // namespace slu
