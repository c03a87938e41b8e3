"""Compression with PaddleNLP's Trainer.compress (PaddleSlim): DynaBERT width pruning, QAT/PTQ, INT8 embeddings.

Called by run_train.py --do_compress. Argument checks happen in `check_strategy`, before anything is
loaded or trained.
"""
import os

KNOWN_STRATEGIES = ("dynabert", "ptq", "qat", "dynabert+ptq", "dynabert+qat", "dynabert+embeddings",
                    "dynabert+qat+embeddings")
SUPPORTED_STRATEGIES = ("dynabert+qat+embeddings",)


def normalise_strategy(strategy):
    parts = [p.strip() for p in (strategy or "").split("+") if p.strip()]
    order = {"dynabert": 0, "ptq": 1, "qat": 1, "embeddings": 2}
    return "+".join(sorted(parts, key=lambda p: order.get(p, 3)))


def check_strategy(args):
    """Error messages (empty when fine) for --strategy and --width_mult_list."""
    errors = []
    strategy = normalise_strategy(args.strategy)
    if strategy not in KNOWN_STRATEGIES:
        errors.append(f"unknown --strategy {args.strategy!r}; PaddleNLP accepts: {', '.join(KNOWN_STRATEGIES)}")
    elif strategy not in SUPPORTED_STRATEGIES:
        errors.append(f"--strategy {strategy!r} is not supported by this pipeline yet; use "
                      f"{' or '.join(SUPPORTED_STRATEGIES)}")
    for w in args.width_mult_list or []:
        try:
            value = float(eval(str(w), {"__builtins__": {}}))  # PaddleNLP evaluates these too ('3/4')
        except Exception:
            value = None
        if value is None or not 0 < value <= 1:
            errors.append(f"--width_mult_list value {w!r} is not a number in (0, 1]")
    return errors


def run(model, tokenizer, labels, slotless, train_ex, dev_ex, model_args, data_args, args):
    raise SystemExit("run_train.py: error: --do_compress is being implemented (see issue 3)")
