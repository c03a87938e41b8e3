"""Turn an exported directory's Paddle model into model.onnx next to it, for the C++ demo.

    python deploy/cpp/convert_to_onnx.py --model_dir output/nano [--model_prefix infer_model]
"""
import argparse

from slu.onnx_export import convert


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_dir", required=True)
    ap.add_argument("--model_prefix", default="infer_model")
    ap.add_argument("--output", default="model.onnx")
    ap.add_argument("--opset_version", type=int, default=13)
    a = ap.parse_args()
    try:
        print(convert(a.model_dir, a.model_prefix, a.output, a.opset_version))
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise SystemExit(f"convert_to_onnx.py: error: {e}")


if __name__ == "__main__":
    main()
