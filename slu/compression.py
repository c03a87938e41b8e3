"""Compression with PaddleNLP's Trainer.compress (PaddleSlim): DynaBERT width pruning, QAT, INT8 embeddings.

Driven by compress.py and run_train.py --do_compress. `check_args` runs before anything is loaded or trained.
For width w (default 0.75) it writes <output_dir>/width_mult_<w>/:
    model_state.pdparams + config.json   width-pruned FP32 weights (JointErnie.from_pretrained loads them)
    pruned.pdmodel/.pdiparams            the same, as a static graph
    int8.pdmodel/.pdiparams              pruned + QAT (INT8 matmul weights and activations)
    quant_emb.pdmodel/.pdiparams         pruned + QAT + INT8 (log-quantized) embedding tables
plus the tokenizer and label files and deploy_config.json, so that the directory deploys on its own; and
<output_dir>/compress_report.{json,md,png}: accuracy, size and parameter count of every stage.
"""
import copy
import inspect
import math
import os
import random

import paddle
from paddlenlp.trainer import trainer_compress  # noqa: F401  (importing it adds Trainer.compress and .quant)
from paddlenlp.utils.log import logger
from paddleslim.nas.ofa import OFA

from slu import compat, data, decoding, export, metrics, onnx_export, program, training
from slu.distillation import distillation_loss
from slu.predictor import Predictor, PythonTokenizer, create_runtime

KNOWN_STRATEGIES = ("dynabert", "ptq", "qat", "dynabert+ptq", "dynabert+qat", "dynabert+embeddings",
                    "dynabert+qat+embeddings")
SUPPORTED_STRATEGIES = ("dynabert", "dynabert+qat", "dynabert+qat+embeddings")
REFUSED_WHY = {
    "ptq": "post-training quantization needs PaddleNLP's grid search over calibration settings, which this "
           "pipeline does not drive; QAT gives the INT8 model",
    "qat": "QAT without DynaBERT skips the width pruning that the stage report and the deployment expect",
    "dynabert+ptq": "post-training quantization is not driven by this pipeline; use QAT",
    "dynabert+embeddings": "PaddleNLP quantizes embeddings of the exported pruned model only after QAT/PTQ in "
                           "this release; use dynabert+qat+embeddings",
}
STAGES = (("fine-tuned", None), ("+ pruning (vocab + width)", "pruned"),
          ("+ INT8 matmul (QAT)", "int8"), ("+ INT8 embeddings", "quant_emb"))


class QATDistillation:
    """QAT that learns from the width-pruned FP32 model as well as from the gold labels: `loss` is
    (1 - alpha) * gold_loss + alpha * slu.distillation.distillation_loss against a frozen copy of `model` taken
    when this is made, before QAT rewrites that model in place. PaddleNLP's QAT loop hands its criterion only
    (logits, labels), so `recording` keeps the batch the teacher needs as the train loader yields it."""

    def __init__(self, model, gold_loss, label_names, alpha, temperature):
        self.teacher = copy.deepcopy(model)
        self.teacher.eval()
        for p in self.teacher.parameters():
            p.stop_gradient = True
        self.teacher_inputs = inspect.signature(self.teacher.forward).parameters
        self.slot_index = list(label_names).index("slot_label")
        self.gold_loss, self.alpha, self.temperature = gold_loss, alpha, temperature
        self.batch = None

    def recording(self, loader):
        return _RecordingLoader(loader, self)

    def loss(self, logits, labels):
        with paddle.no_grad():
            teacher_logits = self.teacher(**self.batch)
        return (1 - self.alpha) * self.gold_loss(logits, labels) + \
            self.alpha * distillation_loss(logits, teacher_logits, labels[self.slot_index], self.temperature)


class _RecordingLoader:
    def __init__(self, loader, distillation):
        self.loader, self.distillation = loader, distillation

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            inputs = self.distillation.teacher_inputs
            self.distillation.batch = {k: v for k, v in batch.items() if k in inputs}  # before the loop pops labels
            yield batch


class CompressionTrainer(training.JointTrainer):
    """JointTrainer for PaddleNLP's Trainer.compress. Its `quant` (called per quantization stage, after DynaBERT)
    first hands the width-pruned FP32 model to `on_pruned`, before QAT rewrites self.model in place; with
    `qat_distill_alpha` > 0, QAT then distils from a frozen copy of that model (QATDistillation)."""

    def __init__(self, *args, on_pruned, qat_distill_alpha=0.0, distill_temperature=2.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_pruned = on_pruned
        self.qat_distill_alpha, self.distill_temperature = qat_distill_alpha, distill_temperature
        self.qat_distillation = None

    def quant(self, model_dir, strategy):
        if strategy in ("qat", "ptq"):
            self.on_pruned(self)
        if strategy == "qat" and self.qat_distill_alpha:
            self.qat_distillation = QATDistillation(self.model, self.criterion, self.args.label_names,
                                                    self.qat_distill_alpha, self.distill_temperature)
            self.criterion = self.qat_distillation.loss  # the one loss PaddleNLP's QAT loop calls
            logger.info(f"QAT distils from the width-pruned FP32 model: weight {self.qat_distill_alpha}, "
                        f"temperature {self.distill_temperature} (--qat_distill_alpha)")
        return super().quant(model_dir, strategy)

    def get_train_dataloader(self):
        loader = super().get_train_dataloader()
        return loader if self.qat_distillation is None else self.qat_distillation.recording(loader)


def normalise_strategy(strategy):
    parts = [p.strip() for p in (strategy or "").split("+") if p.strip()]
    order = {"dynabert": 0, "ptq": 1, "qat": 1, "embeddings": 2}
    return "+".join(sorted(parts, key=lambda p: order.get(p, 3)))


def parse_widths(width_mult_list):
    out = []
    for w in width_mult_list or ["3/4"]:
        try:
            value = float(eval(str(w), {"__builtins__": {}}))  # PaddleNLP evaluates these too ('3/4')
        except Exception:
            value = None
        out.append((w, value))
    return out


def check_args(data_args, args):
    """Error messages (empty when fine) for a compression run: data, --strategy and --width_mult_list."""
    errors = []
    if args.do_train:
        errors.append("--do_compress cannot be combined with --do_train: fine-tune first, then compress the "
                      "fine-tuned model with --model_name_or_path pointing at it")
    if not data_args.train_path or not data_args.dev_path:
        errors.append("compression needs --train_path and --dev_path")
    strategy = normalise_strategy(args.strategy)
    if strategy not in KNOWN_STRATEGIES:
        errors.append(f"unknown --strategy {args.strategy!r}; PaddleNLP accepts: {', '.join(KNOWN_STRATEGIES)}")
    elif strategy not in SUPPORTED_STRATEGIES:
        errors.append(f"--strategy {strategy!r} is refused: {REFUSED_WHY[strategy]}; supported: "
                      f"{', '.join(SUPPORTED_STRATEGIES)}")
    widths = parse_widths(args.width_mult_list)
    for w, value in widths:
        if value is None or not 0 < value < 1:
            errors.append(f"--width_mult_list value {w!r} is not a number between 0 and 1")
    if len(widths) > 1:
        errors.append("--width_mult_list takes one width: PaddleNLP 2.8 quantizes the last width's model into "
                      "every width directory")
    return errors


def trainer_args(args, train_size):
    """The TrainingArguments Trainer.compress reads, worked out once, as a copy (PaddleNLP also rewrites the
    arguments it is given): the strategy in PaddleNLP's order, the one width as a number, and save_steps no
    more than the run's steps, since PaddleNLP evaluates (and saves) a width model only every save_steps."""
    (_, width), = parse_widths(args.width_mult_list)
    steps = args.max_steps if args.max_steps > 0 else \
        math.ceil(train_size / args.per_device_train_batch_size) * math.ceil(args.num_train_epochs)
    out = copy.copy(args)
    out.strategy, out.width_mult_list = normalise_strategy(args.strategy), [str(width)]
    if args.save_steps > steps:
        logger.warning(f"--save_steps {args.save_steps} > {steps} training steps: using {steps}")
        out.save_steps = steps
    return out


def make_custom_evaluate(labels, slotless, log):
    """Sentence accuracy (the metric of training and run_eval) for a JointErnie or its OFA wrapper.

    The returned score is the sentence accuracy plus 1e-6 * (1 + intent accuracy): strictly positive,
    because PaddleNLP saves a DynaBERT width model only when the score beats 0, with ties broken by
    intent accuracy. The logged figures are the plain accuracies."""
    @paddle.no_grad()
    def custom_evaluate(trainer, model, data_loader):
        model.eval()
        ip, ig, sp, sg = [], [], [], []
        for batch in data_loader:
            outputs = model(*[batch[k] for k in ("input_ids", "token_type_ids") if k in batch])
            if isinstance(model, OFA):
                outputs = outputs[0]  # (student outputs, teacher outputs)
            intent_logits, slot_logits = outputs[0], outputs[1]
            ip += intent_logits.argmax(-1).numpy().tolist()
            ig += batch["intent_label"].numpy().reshape([-1]).tolist()
            sp += list(slot_logits.argmax(-1).numpy())
            sg += list(batch["slot_label"].numpy())
        model.train()
        m = metrics.sentence_metrics(ip, ig, sp, sg, labels, slotless)
        log(f"eval_accuracy: {m['accuracy']:.6f}, eval_intent_accuracy: {m['intent_accuracy']:.6f}")
        return float(m["accuracy"] + 1e-6 * (1 + m["intent_accuracy"]))

    return custom_evaluate


def stage_report(stage_prefixes, tokenizer, dev_ex, labels, slotless, settings, intent_types=None,
                 batch_size=256, crf_scores=None):
    """Dev accuracy (Paddle Inference, with the run's slot decoding), size and parameter count of each exported
    stage."""
    vocab = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda x: x[1])]
    decoder = decoding.SlotDecoder(labels, settings.slot_decoding, intent_types, decoding.continuation_ids(vocab),
                                   crf_scores)
    rows = []
    for name, prefix in stage_prefixes:
        predictor = Predictor(create_runtime(prefix, "paddle_inference"), PythonTokenizer(tokenizer), labels,
                              max_length=settings.max_seq_length,
                              input_dtype=program.model_input_dtype(prefix + ".pdmodel"), batch_size=batch_size,
                              slotless=slotless, context_turns=settings.context_turns,
                              max_context_length=settings.max_context_length, decoder=decoder)
        m = predictor.evaluate(dev_ex)
        rows.append({"stage": name, "model": prefix, "accuracy": round(100 * m["accuracy"], 2),
                     "intent_accuracy": round(100 * m["intent_accuracy"], 2),
                     "size_mib": round(program.model_size_mib(prefix), 3),
                     "params": program.static_param_count(prefix + ".pdmodel")})
    return rows


def write_report(rows, out_prefix, title=""):
    """compress_report.json, .md (upstream's layout, deltas against the first row) and .png."""
    base = rows[0]
    data.save_json(out_prefix + ".json", {"title": title, "stages": rows})
    lines = ["| model | accuracy (%) | intent accuracy (%) | size (MiB) | parameters |", "|---|---|---|---|---|"]
    for r in rows:
        if r is base:
            acc, size = f"{r['accuracy']:.2f}", f"{r['size_mib']:.2f}"
        else:
            acc = f"{r['accuracy']:.2f} ({r['accuracy'] - base['accuracy']:+.2f})"
            size = f"{r['size_mib']:.2f} ({100 * (r['size_mib'] / base['size_mib'] - 1):+.1f}%)"
        lines.append(f"| {r['stage']} | {acc} | {r['intent_accuracy']:.2f} | {size} | {r['params']:,} |")
    with open(out_prefix + ".md", "w", encoding="utf-8") as f:
        f.write((f"{title}\n\n" if title else "") + "\n".join(lines) + "\n")
    import matplotlib  # only for the report's plot, and slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["size_mib"] for r in rows], [r["accuracy"] for r in rows], "o-")
    for r in rows:
        ax.annotate(r["stage"], (r["size_mib"], r["accuracy"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("model size (MiB)")
    ax.set_ylabel("dev sentence accuracy (%)")
    ax.set_title(title or "compression stages")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_prefix + ".png", dpi=120)
    plt.close(fig)
    return "\n".join(lines)


CALIBRATION_QUERIES = 512


def write_onnx_int8(width_dir, tokenizer, train_ex, settings, seed):
    """quant_emb.onnx, the INT8-embedding stage for ONNX Runtime and the C++ demo (slu/onnx_export.py), with its
    activation scales calibrated on a seeded sample of the training queries (with their context, for a context
    model)."""
    sample = random.Random(seed).sample(train_ex, min(CALIBRATION_QUERIES, len(train_ex)))

    def tokenize(texts, max_length):
        return data.encode_queries(tokenizer, texts, max_length)

    ids, offsets, _ = tokenize([e["query"] for e in sample], settings.max_seq_length)
    ids, types, _ = data.add_context(tokenize, ids, offsets, [e.get("context", []) for e in sample],
                                     settings.context_turns, settings.max_context_length)
    feeds = list(zip(ids, types)) if settings.context_turns else ids
    return onnx_export.convert(width_dir, "quant_emb", "quant_emb.onnx", calibration_ids=feeds)


def run(setup, model_args, args):
    """Compress the fine-tuned model of `setup` (a training.Setup); write the width directory and the report."""
    logger.info(f"compatibility fixes applied: {compat.apply()}")
    compress_args = trainer_args(args, len(setup.train_ex))
    (w_arg, width), = parse_widths(args.width_mult_list)
    width_dir = os.path.join(args.output_dir, "width_mult_" + str(round(width, 2)))
    labels, tokenizer = setup.labels, setup.tokenizer
    custom_evaluate = make_custom_evaluate(labels, setup.slotless, logger.info)
    context = bool(setup.settings.context_turns)
    pruned_positions = []

    def export_deploy_files():
        export.write_deploy_files(width_dir, tokenizer=tokenizer, settings=setup.settings, labels=labels,
                                  slotless=setup.slotless, input_dtype=args.input_dtype,
                                  max_position_embeddings=pruned_positions[0], intent_types=setup.intent_types,
                                  crf=setup.model.crf)

    def save_pruned(trainer):
        """The width-pruned FP32 model (before QAT changes trainer.model in place): dygraph + static."""
        if pruned_positions:
            return
        trainer.model.config.width_mult = width
        trainer.model.save_pretrained(width_dir)  # replaces the full-width supernet weights PaddleNLP left there
        pruned_positions.append(export.export_static(width_dir, os.path.join(width_dir, "pruned"),
                                                     args.input_dtype, labels, model_args.dropout, context))
        export_deploy_files()
        custom_evaluate(trainer, trainer.model, trainer.get_eval_dataloader(trainer.eval_dataset))

    trainer = training.make_trainer(setup, compress_args, trainer_class=CompressionTrainer, on_pruned=save_pruned,
                                    qat_distill_alpha=model_args.qat_distill_alpha,
                                    distill_temperature=model_args.distill_temperature)
    trainer.compress(custom_evaluate=custom_evaluate)
    save_pruned(trainer)
    if os.path.isfile(os.path.join(width_dir, "quant_emb.pdmodel")):
        write_onnx_int8(width_dir, tokenizer, setup.train_ex, setup.settings, args.seed)
    export_deploy_files()  # lists the stages written since

    # the report: every stage's static model, evaluated with Paddle Inference on the dev set
    fine_tuned = os.path.join(model_args.model_name_or_path, "infer_model")
    if not os.path.isfile(fine_tuned + ".pdmodel"):
        fine_tuned = os.path.join(args.output_dir, "fine_tuned")
        export.export_static(model_args.model_name_or_path, fine_tuned, args.input_dtype, labels,
                             model_args.dropout, context)
    stages = [(name, fine_tuned if prefix is None else os.path.join(width_dir, prefix)) for name, prefix in STAGES]
    stages = [(n, p) for n, p in stages if os.path.isfile(p + ".pdmodel")]
    crf_scores = setup.model.crf.scores() if setup.model.crf is not None else None
    rows = stage_report(stages, tokenizer, setup.dev_ex, labels, setup.slotless, setup.settings, setup.intent_types,
                        crf_scores=crf_scores)
    title = (f"{os.path.basename(os.path.normpath(model_args.model_name_or_path))}, strategy "
             f"{compress_args.strategy}, width {w_arg}, dev {len(setup.dev_ex)} queries")
    table = write_report(rows, os.path.join(args.output_dir, "compress_report"), title)
    logger.info("compression report (" + os.path.join(args.output_dir, "compress_report.md") + "):\n" + table)
    return rows
