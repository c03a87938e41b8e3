"""What leaves training: embedding pruning (the vocabulary and positions a model keeps), the static graph that
Paddle Inference, ONNX and Lite start from, and the files a deployment needs beside it (tokenizer, labels,
deploy_config.json). Used by run_train.py, slu/training.py's Setup and slu/compression.py."""
import filecmp
import os
import subprocess
import sys
import tempfile
from collections import Counter

import paddle
from paddlenlp.transformers import AutoTokenizer, ErnieTokenizer
from paddlenlp.utils.log import logger

from slu import data, envs, manifest
from slu.model import JointErnie, to_static_input_spec


# ------------------------------------------------------------------------------------ pruning
def prune_embeddings(model, tokenizer, queries, max_vocab_size, max_seq_length, output_dir):
    """Keep the `max_vocab_size` most frequent tokens of `queries` (special tokens always, [PAD]/[CLS]/[SEP]
    first), cut position embeddings to `max_seq_length`, save model+tokenizer to `output_dir` and reload.

    Embedding rows == config.vocab_size == tokenizer size in what is saved (upstream issue 9896)."""
    vocab = tokenizer.get_vocab()
    id2tok = {i: t for t, i in vocab.items()}
    specials = [tokenizer.pad_token, tokenizer.cls_token, tokenizer.sep_token, tokenizer.unk_token,
                tokenizer.mask_token]
    specials = [t for t in dict.fromkeys(specials) if t is not None]
    missing = [t for t in specials if t not in vocab]
    if missing:
        raise ValueError(f"tokenizer vocab lacks special tokens {missing}")
    if max_vocab_size < len(specials) + 1:
        raise ValueError(f"--max_vocab_size {max_vocab_size} leaves no room beside {len(specials)} special tokens")
    counts = Counter()
    for ids in tokenizer(queries, add_special_tokens=False, return_attention_mask=False,
                         return_token_type_ids=False)["input_ids"]:
        counts.update(ids)
    special_ids = [vocab[t] for t in specials]
    others = sorted((i for i in id2tok if i not in set(special_ids)), key=lambda i: (-counts[i], i))
    kept = sorted(others[:max_vocab_size - len(special_ids)])
    new_ids = special_ids + kept

    config = model.config
    state = model.state_dict()
    wkey = "ernie.embeddings.word_embeddings.weight"
    pkey = "ernie.embeddings.position_embeddings.weight"
    old_rows = state[wkey].shape[0]
    if max(new_ids) >= old_rows:
        raise ValueError(f"tokenizer has id {max(new_ids)} but the model has {old_rows} embedding rows")
    state[wkey] = paddle.to_tensor(state[wkey].numpy()[new_ids])
    if max_seq_length < state[pkey].shape[0]:
        state[pkey] = paddle.to_tensor(state[pkey].numpy()[:max_seq_length])
    config.vocab_size = len(new_ids)
    config.max_position_embeddings = state[pkey].shape[0]
    config.pad_token_id = 0

    os.makedirs(output_dir, exist_ok=True)
    new_model = JointErnie(config, intent_dim=model.intent_dim, slot_dim=model.slot_dim,
                           dropout=model.dropout.p)
    new_model.set_state_dict(state)
    new_model.save_pretrained(output_dir)
    vocab_file = os.path.join(output_dir, "vocab.txt")
    data.write_lines(vocab_file, [id2tok[i] for i in new_ids])
    do_lower = getattr(tokenizer, "do_lower_case", True)
    ErnieTokenizer(vocab_file, do_lower_case=do_lower).save_pretrained(output_dir)
    logger.info(f"Pruned embeddings: vocab {old_rows} -> {len(new_ids)} ({sum(1 for i in new_ids if counts[i])} "
                f"seen in the data), positions -> {config.max_position_embeddings}; saved to {output_dir}")
    return load_pruned(output_dir, model)


def load_pruned(pruned_dir, model):
    """The pruned model and tokenizer saved in `pruned_dir`, with the heads of `model`."""
    with paddle.utils.unique_name.guard():  # same parameter names as a fresh process loading the directory
        pruned = JointErnie.from_pretrained(pruned_dir, intent_dim=model.intent_dim, slot_dim=model.slot_dim,
                                            dropout=model.dropout.p)
    return pruned, AutoTokenizer.from_pretrained(pruned_dir)


# ------------------------------------------------------------------------------------ export
def export_static(model_dir, output_prefix, input_dtype, labels, dropout=0.1, context=False):
    """<output_prefix>.pdmodel/.pdiparams: a fresh JointErnie loaded from model_dir, as a static program in
    Paddle's ProgramDesc format, the one every runtime here reads (Paddle Inference 2 and 3, FastDeploy, Paddle
    Lite's optimizer, paddle2onnx, OpenVINO, slu/program.py). Paddle 3 writes only its new PIR format (.json):
    with FLAGS_enable_pir_api=0 its dy2static fails ("matmul(): argument (position 1) must be Value, but got
    Variable"), so on Paddle 3 the legacy environment's Paddle 2.6 writes the .pdmodel from the same weights, and
    Paddle 3 writes its PIR program <output_prefix>.json beside it, for Paddle 3's Inference (both read the same
    .pdiparams: Paddle 3's own is checked to be byte for byte the same). Returns the exported model's
    max_position_embeddings."""
    intent_dim, slot_dim = len(labels.intents), len(labels.slots)
    if envs.paddle_major() < 3:
        return _export_here(model_dir, output_prefix, input_dtype, intent_dim, slot_dim, dropout, context)
    cmd = [envs.legacy_python(), "-m", "slu.export", model_dir, output_prefix, input_dtype, str(intent_dim),
           str(slot_dim), str(dropout), str(int(context))]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"exporting {model_dir} in {envs.LEGACY_VENV} failed: {p.stderr.strip()[-2000:]}")
    logger.info(p.stdout.strip())
    _export_pir_beside(model_dir, output_prefix, input_dtype, intent_dim, slot_dim, dropout, context)
    return int(p.stdout.split()[-1])


def _export_pir_beside(model_dir, output_prefix, input_dtype, intent_dim, slot_dim, dropout, context):
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(output_prefix))) as tmp:
        pir_prefix = os.path.join(tmp, "pir")
        _export_here(model_dir, pir_prefix, input_dtype, intent_dim, slot_dim, dropout, context)
        if not filecmp.cmp(pir_prefix + ".pdiparams", output_prefix + ".pdiparams", shallow=False):
            raise RuntimeError(f"Paddle 3's parameters of {model_dir} differ from {output_prefix}.pdiparams: "
                               f"the PIR program cannot share them")
        os.replace(pir_prefix + ".json", output_prefix + ".json")
    logger.info(f"Exported Paddle 3's PIR program to {output_prefix}.json (parameters: {output_prefix}.pdiparams)")


def _export_here(model_dir, output_prefix, input_dtype, intent_dim, slot_dim, dropout, context):
    """paddle.jit.save of a fresh model: .pdmodel on Paddle 2, PIR .json on Paddle 3 (and .pdiparams)."""
    with paddle.utils.unique_name.guard():  # to_static changes the layer in place: a fresh one
        model = JointErnie.from_pretrained(model_dir, intent_dim=intent_dim, slot_dim=slot_dim, dropout=dropout)
    model.eval()
    static = paddle.jit.to_static(model, input_spec=to_static_input_spec(input_dtype, context))
    paddle.jit.save(static, output_prefix)
    logger.info(f"Exported static graph to {output_prefix} (input_ids: {input_dtype})")
    return model.config.max_position_embeddings


def write_deploy_files(directory, *, tokenizer, settings, labels, slotless, input_dtype, max_position_embeddings,
                       intent_types=None, crf=None):
    """Everything a deployment needs beside the model: tokenizer files, label files, deploy_config.json (the run's
    `settings`, with a CRF slot head's scores when `crf` is given)."""
    os.makedirs(directory, exist_ok=True)
    tokenizer.save_pretrained(directory)
    data.write_lines(os.path.join(directory, "intent_label.txt"), labels.intents)
    data.write_lines(os.path.join(directory, "slot_label.txt"), labels.slots)
    data.write_lines(os.path.join(directory, "slots_label.txt"), labels.slots)  # the name upstream's client reads
    config = manifest.build(max_seq_length=settings.max_seq_length, max_position_embeddings=max_position_embeddings,
                            input_dtype=input_dtype, labels=labels, slotless=slotless, vocab_size=len(tokenizer),
                            do_lower_case=getattr(tokenizer, "do_lower_case", True),
                            pad_token_id=tokenizer.pad_token_id, context_turns=settings.context_turns,
                            max_context_length=settings.max_context_length, intent_slot_types=intent_types,
                            slot_decoding=settings.slot_decoding,
                            slot_transitions=crf.scores() if crf is not None else None)
    return manifest.write(directory, config)


if __name__ == "__main__":  # export_static on Paddle 3 runs this in the legacy environment
    model_dir, prefix, dtype, intents, slots, dropout, context = sys.argv[1:]
    positions = _export_here(model_dir, prefix, dtype, int(intents), int(slots), float(dropout), context == "1")
    print(f"Exported {prefix}.pdmodel/.pdiparams with Paddle {paddle.__version__}; max_position_embeddings {positions}")
