// slu::LitePredictor: the pipeline (slu.h) on Paddle Lite's light API (MobileConfig), which runs a .nb file that
// Paddle Lite's optimizer wrote for arm (slu/lite.py: <prefix>.arm.nb). Built for aarch64 against the library of
// scripts/build_lite_arm.sh.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "paddle_api.h"
#include "slu.h"

namespace slu {

class LitePredictor : public Pipeline {
 public:
  // Loads the .nb, vocabulary and labels; throws std::runtime_error when they are missing or disagree with the
  // options' manifest (Pipeline's checks, the model's inputs against context_turns) and on a file named *.x86.nb
  // (the x86 target's kernels; an arm .nb on x86 returns garbage without an error, and the converse is not tried).
  // Paddle Lite's own errors (built with exceptions) come as std::runtime_error("Paddle Lite: ...").
  explicit LitePredictor(const PredictorOptions& options);

  std::vector<Prediction> Predict(const Batch& queries, const std::vector<Context>& contexts = {});

 private:
  void SetInput(int k, const std::vector<Encoding>& encodings, std::vector<int64_t> Encoding::*rows, int64_t pad,
                size_t width);

  std::shared_ptr<paddle::lite_api::PaddlePredictor> predictor_;
  size_t inputs_ = 1;   // input_ids, and token_type_ids with context
  bool int32_input_ = false;  // the manifest's input_dtype (absent: int64)
};

}  // namespace slu
