"""Average the weights of several checkpoints of one training run into a model directory.

Averaging the last epochs' checkpoints smooths out the noise of the final updates of a from-scratch run:

    python scripts/average_checkpoints.py --output_dir output/nano_avg3 \
        output/nano/checkpoint-1928 output/nano/checkpoint-2169 output/nano/checkpoint-2410
    python run_train.py --model_name_or_path output/nano_avg3 --output_dir output/nano_avg3 \
        --dev_path data/dev.txt --do_eval --do_export --input_dtype int32

The directory gets the averaged model_state.pdparams, the last checkpoint's config and tokenizer files, and the
label files of the run (found beside the checkpoints).
"""
import argparse
import os
import shutil

import slu  # noqa: F401  (its zlib work-around must run before paddle is imported)


def average(checkpoints, output_dir):
    import paddle

    if len(checkpoints) < 2:
        raise SystemExit("average_checkpoints.py: error: give at least two checkpoints")
    states = []
    for c in checkpoints:
        path = os.path.join(c, "model_state.pdparams")
        if not os.path.isfile(path):
            raise SystemExit(f"average_checkpoints.py: error: model file not found: {path}")
        states.append(paddle.load(path))
    keys = set(states[0])
    for c, s in zip(checkpoints, states):
        if set(s) != keys or any(s[k].shape != states[0][k].shape for k in keys):
            raise SystemExit(f"average_checkpoints.py: error: {c} does not have the parameters of {checkpoints[0]}")
    avg = {k: sum(s[k].astype("float32") for s in states) / len(states) for k in states[0]}
    os.makedirs(output_dir, exist_ok=True)
    last = checkpoints[-1]
    for f in os.listdir(last):
        if f in ("config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(os.path.join(last, f), output_dir)
    run_dir = os.path.dirname(os.path.abspath(last))
    for f in ("intent_label.txt", "slot_label.txt", "deploy_config.json"):
        if os.path.isfile(os.path.join(run_dir, f)):
            shutil.copy(os.path.join(run_dir, f), output_dir)
    paddle.save(avg, os.path.join(output_dir, "model_state.pdparams"))
    print(f"{output_dir}: average of {len(checkpoints)} checkpoints ({', '.join(checkpoints)})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output_dir", required=True)
    ap.add_argument("checkpoints", nargs="+")
    a = ap.parse_args(argv)
    average(a.checkpoints, a.output_dir)


if __name__ == "__main__":
    main()
