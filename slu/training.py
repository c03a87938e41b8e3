"""Training building blocks: arguments, the settings resolved from them, encoding, collation, the length-grouped
sampler, checkpoints, JointTrainer and the metric hook (pruning and export are in slu/export.py). run_train.py and
compress.py are thin mains over this module."""
import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from typing import List, Optional

from slu import data, decoding, export, manifest, metrics
from slu.data import PAD_SLOT_ID, LabelSet, read_examples, slotless_intents
from slu.distillation import Teacher, distillation_loss

import numpy as np
import paddle
from paddlenlp.trainer import CompressionArguments, Trainer, TrainerCallback
from paddlenlp.transformers import AutoTokenizer
from paddlenlp.transformers.ernie.configuration import ERNIE_PRETRAINED_INIT_CONFIGURATION
from paddlenlp.utils.log import logger

from slu.model import JointErnie, JointLoss, rdrop_loss

DEFAULT_MAX_SEQ_LENGTH = 16
CONTEXT_TOKENS_PER_TURN = 16  # --max_context_length's default: this many tokens per earlier turn


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default="ernie-3.0-tiny-nano-v2-zh",
        metadata={"help": "A PaddleNLP model name (ernie-3.0-tiny-{base,medium,mini,micro,nano,pico}-v2-zh) "
                          "or a local directory written by init_offline_model.py or by run_train.py."},
    )
    dropout: float = field(default=0.1, metadata={"help": "Dropout before the intent and slot heads."})
    use_crf: bool = field(default=False, metadata={
        "help": "A CRF slot head (as JointBERT's --use_crf): the slot loss is the CRF's negative log-likelihood, and "
                "the export writes its transition scores for --slot_decoding crf. A model directory trained with it "
                "keeps it without the flag."})
    distill_from: Optional[str] = field(default=None, metadata={
        "help": "Distil from this fine-tuned model directory (run_train.py output; same labels, and a vocabulary "
                "that holds every token of the student's): its logits, softened by --distill_temperature, are "
                "extra targets for the intent and the slots."})
    distill_alpha: float = field(default=0.5, metadata={
        "help": "Weight of the distillation loss; 1 - alpha goes to the loss on the gold labels."})
    distill_temperature: float = field(default=2.0, metadata={"help": "Softmax temperature of the distillation."})
    rdrop_alpha: float = field(default=0.0, metadata={
        "help": "R-Drop: run each training batch twice (different dropout), train on the mean of the two losses plus "
                "this weight times the symmetric KL divergence between the two runs' intent and slot distributions. "
                "0 (default) is off; it doubles the forward and backward work of a step."})
    qat_distill_alpha: float = field(default=0.0, metadata={
        "help": "Compression: QAT's loss becomes (1 - A) * the loss on the gold labels + A * T^2 * the KL divergence "
                "from the width-pruned FP32 model's intent and slot distributions (T: --distill_temperature). "
                "0, the flag's default: the gold labels only, as upstream; scripts/compress.sh passes 0.5."})


@dataclass
class DataArguments:
    train_path: Optional[str] = field(default=None, metadata={"help": "Train file (corpus format)."})
    dev_path: Optional[str] = field(default=None, metadata={"help": "Dev file (corpus format)."})
    intent_label_path: str = field(default="data/intent_label.txt", metadata={"help": "Intent label file."})
    slot_label_path: str = field(default="data/slot_label.txt", metadata={"help": "Slot label file."})
    max_seq_length: Optional[int] = field(default=None, metadata={
        "help": f"Max tokens per query, [CLS] and [SEP] included (default {DEFAULT_MAX_SEQ_LENGTH}; when "
                "--model_name_or_path is an exported directory, its deploy_config.json's value)."})
    max_vocab_size: int = field(default=6000, metadata={"help": "Vocabulary size kept by --prune_embeddings."})
    skip_malformed: bool = field(default=False, metadata={"help": "Skip (and count) malformed data lines "
                                                                  "instead of stopping at the first one."})
    context_turns: Optional[int] = field(default=None, metadata={
        "help": "Dialogue context: encode each query with up to this many earlier turns of its session as a second "
                "segment (token type 1; slots only on the query). 0 (default; an exported directory's own value "
                "when --model_name_or_path is one) is upstream's single-utterance model."})
    max_context_length: Optional[int] = field(default=None, metadata={
        "help": "Tokens given to the context turns, their [SEP]s included (default 16 per turn)."})
    slot_decoding: Optional[str] = field(default=None, metadata={
        "help": "Slot decoding written to deploy_config.json: argmax (upstream; the default), constrained (slot "
                "types seen with the predicted intent, valid BIO, whole words; see slu/decoding.py SlotDecoder) or "
                "crf (the same constraints, Viterbi under a --use_crf model's scores). Default when "
                "--model_name_or_path is an exported directory: its own."})


LABEL_NAMES = ["intent_label", "slot_label"]  # the batch fields the loss takes: JointLoss's (intent, slot) labels


@dataclass
class TrainingArguments(CompressionArguments):
    """PaddleNLP's training and compression arguments, with this model's label fields as --label_names' default."""
    label_names: Optional[List[str]] = field(default_factory=lambda: list(LABEL_NAMES), metadata={
        "help": f"The batch fields holding the labels: {' '.join(LABEL_NAMES)} (the default; nothing else)."})


def check_device(device):
    """[error] when `device` cannot run here: PaddleNLP's default is gpu, which a CPU build of Paddle rejects
    with a traceback."""
    if str(device).startswith("gpu") and not paddle.is_compiled_with_cuda():
        return [f"--device {device} (PaddleNLP's default): this PaddlePaddle has no CUDA; pass --device cpu, or "
                "install the GPU package (requirements-gpu.txt)"]
    return []


def check_args(model_args, data_args, args):
    """Errors (empty when fine) that need no model: refused before anything is loaded or trained."""
    errors = check_device(args.device)
    if args.do_train and not data_args.train_path:
        errors.append("--do_train needs --train_path")
    if args.do_eval and not data_args.dev_path:
        errors.append("--do_eval needs --dev_path")
    if list(args.label_names or []) != LABEL_NAMES:
        errors.append(f"--label_names must be {' '.join(LABEL_NAMES)} (the model's two label fields), not "
                      f"{' '.join(args.label_names or [])}")
    if args.input_dtype not in ("int32", "int64"):
        errors.append(f"--input_dtype must be int32 or int64, not {args.input_dtype!r}")
    if data_args.max_seq_length is not None and data_args.max_seq_length < 3:
        errors.append("--max_seq_length must be at least 3 ([CLS], one token, [SEP])")
    if data_args.context_turns is not None and data_args.context_turns < 0:
        errors.append(f"--context_turns must be 0 or more, not {data_args.context_turns}")
    if data_args.max_context_length is not None and data_args.max_context_length < 2:
        errors.append("--max_context_length must be at least 2 (one token and its [SEP])")
    if data_args.slot_decoding is not None and data_args.slot_decoding not in decoding.SlotDecoder.MODES:
        errors.append(f"--slot_decoding must be one of {', '.join(decoding.SlotDecoder.MODES)}, "
                      f"not {data_args.slot_decoding!r}")
    if not model_args.rdrop_alpha >= 0.0:
        errors.append(f"--rdrop_alpha must be 0 (off) or positive, not {model_args.rdrop_alpha}")
    elif model_args.rdrop_alpha and not args.do_train:
        errors.append("--rdrop_alpha needs --do_train (it is a fine-tuning loss)")
    if not 0.0 <= model_args.qat_distill_alpha <= 1.0:
        errors.append(f"--qat_distill_alpha must be in [0, 1], not {model_args.qat_distill_alpha}")
    elif model_args.qat_distill_alpha and not args.do_compress:
        errors.append("--qat_distill_alpha needs --do_compress (it is a QAT loss)")
    elif model_args.qat_distill_alpha and not model_args.distill_temperature > 0:
        errors.append(f"--distill_temperature must be positive, not {model_args.distill_temperature}")
    if model_args.use_crf and args.world_size > 1:
        errors.append("--use_crf trains in one process only (the CRF's scores live in the loss, which data-parallel "
                      "training does not synchronise)")
    if model_args.distill_from is not None:
        if not args.do_train:
            errors.append("--distill_from needs --do_train")
        if not os.path.isdir(model_args.distill_from):
            errors.append(f"--distill_from {model_args.distill_from}: no such directory")
        if not 0.0 <= model_args.distill_alpha <= 1.0:
            errors.append(f"--distill_alpha must be in [0, 1], not {model_args.distill_alpha}")
        if not model_args.distill_temperature > 0:
            errors.append(f"--distill_temperature must be positive, not {model_args.distill_temperature}")
    for p in (data_args.intent_label_path, data_args.slot_label_path, data_args.train_path, data_args.dev_path):
        if p and not os.path.isfile(p):
            errors.append(f"file not found: {p}")
    return errors + check_paths(model_args, args)


def check_paths(model_args, args):
    """The model must be a directory or a PaddleNLP model name; the output directory must be one."""
    errors = []
    model = model_args.model_name_or_path
    if not os.path.isdir(model) and model not in ERNIE_PRETRAINED_INIT_CONFIGURATION:
        errors.append(f"--model_name_or_path {model}: no such directory, and not a PaddleNLP ERNIE model name "
                      "(e.g. ernie-3.0-tiny-nano-v2-zh)")
    parent = os.path.dirname(os.path.abspath(args.output_dir))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        errors.append(f"--output_dir {args.output_dir} is a file, not a directory")
    elif not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        errors.append(f"--output_dir {args.output_dir} cannot be created ({parent} is not a writable directory)")
    return errors


# ------------------------------------------------------------------------------------ loading
@dataclass(frozen=True)
class Settings:
    """How a run encodes and decodes queries, resolved once (resolve_settings) and passed on: nothing rewrites the
    parsed arguments."""
    max_seq_length: int
    context_turns: int
    max_context_length: int
    slot_decoding: str


def resolve_settings(data_args, saved=None):
    """Each setting from its flag, else from `saved` (the deploy_config.json of the exported directory the run
    starts from, if it is one), else the default: max_seq_length 16, no context (max_context_length 16 tokens per
    turn, 0 without context), argmax slot decoding."""
    def pick(flag, field, default):
        return flag if flag is not None else (saved[field] if saved else default)

    max_seq_length = pick(data_args.max_seq_length, "max_seq_length", DEFAULT_MAX_SEQ_LENGTH)
    context_turns = pick(data_args.context_turns, "context_turns", 0)
    max_context_length = 0
    if context_turns:
        max_context_length = data_args.max_context_length
        if max_context_length is None:
            max_context_length = (saved["max_context_length"] if saved and saved["context_turns"]
                                  else CONTEXT_TOKENS_PER_TURN * context_turns)
    return Settings(max_seq_length, context_turns, max_context_length,
                    pick(data_args.slot_decoding, "slot_decoding", "argmax"))


class Setup:
    """What a training or compression run starts from: labels, examples, slot-less intents, settings, model,
    tokenizer."""

    def __init__(self, model_args, data_args, args):
        self.labels = LabelSet.from_files(data_args.intent_label_path, data_args.slot_label_path)
        read = lambda p: read_examples(p, self.labels, data_args.skip_malformed) if p else []  # noqa: E731
        self.train_ex, self.dev_ex = read(data_args.train_path), read(data_args.dev_path)
        for path, examples, needed in ((data_args.train_path, self.train_ex, args.do_train),
                                       (data_args.dev_path, self.dev_ex, args.do_eval or args.do_compress)):
            if needed and not examples:
                raise data.UsageError(f"{path}: no examples (the file is empty or has only blank lines)")
        saved = self._saved_manifest(model_args.model_name_or_path)
        self.slotless = slotless_intents(self.train_ex + self.dev_ex, self.labels)
        if saved and not args.do_train:
            self.slotless = saved["slotless_intents"]  # the fine-tuning run's set, so every stage is scored alike
        self.settings = settings = resolve_settings(data_args, saved)
        for examples in (self.train_ex, self.dev_ex):
            data.attach_context(examples, settings.context_turns)
        self.intent_types = data.intent_slot_types(self.train_ex, self.labels)
        if saved and not args.do_train:
            self.intent_types = saved["intent_slot_types"] or self.intent_types  # the fine-tuning run's table
        logger.info(f"{len(self.train_ex)} train / {len(self.dev_ex)} dev examples; max_seq_length "
                    f"{settings.max_seq_length}; slot-less intents: {self.slotless}")
        self.last_checkpoint = None
        if args.do_train:
            self.last_checkpoint = args.resume_from_checkpoint
            if self.last_checkpoint and not is_complete(self.last_checkpoint):
                raise data.UsageError(f"--resume_from_checkpoint {self.last_checkpoint}: incomplete checkpoint (the "
                                      f"run stopped while writing or deleting it)")
            if os.path.isdir(args.output_dir) and args.overwrite_output_dir and not self.last_checkpoint:
                if args.should_save:
                    remove_checkpoints(args.output_dir)
                if args.world_size > 1:
                    paddle.distributed.barrier()
            elif not self.last_checkpoint and os.path.isdir(args.output_dir):
                self.last_checkpoint = last_complete_checkpoint(args.output_dir)
        self.rdrop_alpha = model_args.rdrop_alpha
        if args.do_train or args.do_compress:
            log_cpu_threads(args.device)
        if self.rdrop_alpha and args.do_train:
            logger.info(f"R-Drop: each training batch runs twice, KL weight {self.rdrop_alpha}")
        self.model, self.tokenizer = self._load_model(model_args, data_args, args)
        if settings.slot_decoding in decoding.SlotDecoder.NEEDS_CRF and not self.model.use_crf:
            raise data.UsageError(f"--slot_decoding {settings.slot_decoding}: {model_args.model_name_or_path} has no "
                                  "CRF slot head (train it with --use_crf)")
        self.teacher = None
        if model_args.distill_from and args.do_train:
            self.teacher = Teacher(model_args.distill_from, self.tokenizer, self.labels, settings,
                                   model_args.distill_alpha, model_args.distill_temperature)

    @staticmethod
    def _saved_manifest(model_dir):
        if not os.path.isfile(os.path.join(model_dir, manifest.NAME)):
            return None
        return manifest.read(model_dir)

    def _load_model(self, model_args, data_args, args):
        model_path = model_args.model_name_or_path
        pruned_dir = os.path.join(args.output_dir, "pretrained_model")
        prune = args.do_train and args.prune_embeddings
        if prune and self.last_checkpoint and os.path.isdir(pruned_dir):
            model_path = pruned_dir  # resuming: the checkpoint's shapes are those of the pruned model
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        # Optimizer state in a checkpoint is keyed by parameter names, which depend on how many layers the
        # process made before: build the trained model in a fresh name scope so a resumed run matches.
        with paddle.utils.unique_name.guard():
            # use_crf only when asked: PaddleNLP copies keyword arguments that name config fields into the config,
            # so use_crf=None would switch off the CRF head that a saved config.json turns on
            crf = {"use_crf": True} if model_args.use_crf else {}
            model = JointErnie.from_pretrained(model_path, intent_dim=len(self.labels.intents),
                                               slot_dim=len(self.labels.slots), dropout=model_args.dropout, **crf)
        settings = self.settings
        total = settings.max_seq_length + settings.max_context_length
        if total > model.config.max_position_embeddings:
            what = f"--max_seq_length {settings.max_seq_length} " + (
                f"+ --max_context_length {settings.max_context_length} exceed" if settings.max_context_length
                else "exceeds")
            raise data.UsageError(f"{what} the {model.config.max_position_embeddings} position embeddings of "
                                  f"{model_path}")
        if prune and model_path != pruned_dir:
            queries = [e["query"] for e in self.train_ex + self.dev_ex]
            if args.should_save:  # one rank writes the pruned model, the others load it
                model, tokenizer = export.prune_embeddings(model, tokenizer, queries, data_args.max_vocab_size,
                                                           total, pruned_dir)
            if args.world_size > 1:
                paddle.distributed.barrier()
            if not args.should_save:
                model, tokenizer = export.load_pruned(pruned_dir, model)
        return model, tokenizer


# ------------------------------------------------------------------------------------ data
def encode_examples(examples, tokenizer, labels, max_seq_length, context_turns=0, max_context_length=0):
    """Token ids, intent id and per-token BIO slot ids for each example (slots from char offsets); with context,
    token_type_ids too (the context's tokens carry slot label PAD, which the loss ignores)."""
    def tokenize(texts, max_length):
        return data.encode_queries(tokenizer, texts, max_length)

    ids, offsets, _ = tokenize([ex["query"] for ex in examples], max_seq_length)
    ids, types, offsets = data.add_context(tokenize, ids, offsets, [ex.get("context", []) for ex in examples],
                                           context_turns, max_context_length)
    out = []
    for ex, i, t, o in zip(examples, ids, types, offsets):
        item = {"input_ids": i, "intent_label": labels.intent2id[ex["intent"]],
                "slot_label": data.spans_to_token_labels(o, ex["slots"], labels)}
        if context_turns:
            item["token_type_ids"] = t
        out.append(item)
    return out


class Collator:
    """Pads each batch to its longest item: input_ids with the tokenizer's pad id, slots with PAD (0)."""

    def __init__(self, pad_token_id):
        self.pad_token_id = pad_token_id

    def __call__(self, batch):
        out = {"input_ids": data.pad_batch([b["input_ids"] for b in batch], self.pad_token_id, "int64")}
        if "token_type_ids" in batch[0]:
            out["token_type_ids"] = data.pad_batch([b["token_type_ids"] for b in batch], 0, "int64")
        if "slot_label" in batch[0]:
            out["intent_label"] = np.array([b["intent_label"] for b in batch], dtype="int64")
            out["slot_label"] = data.pad_batch([b["slot_label"] for b in batch], PAD_SLOT_ID, "int64")
        return out


class LengthGroupedBatchSampler(paddle.io.DistributedBatchSampler):
    """Random batches of similar length (padding to 16 costs about 2x against length-grouped batches), sharded
    across data-parallel ranks.

    One order per epoch, the same on every rank (seeded with seed + epoch; the Trainer calls set_epoch): queries
    are shuffled, cut into mega-batches of 50 batches, sorted by length inside each, cut into batches, and the
    batches shuffled. Rank r takes batches r, r + R, r + 2R, ... of that order (R ranks; the order wraps around
    so that every rank runs the same number of steps). One process (R = 1) takes them all.
    """

    def __init__(self, lengths, batch_size, num_replicas=1, rank=0, drop_last=False, seed=0):
        super().__init__(list(range(len(lengths))), batch_size, num_replicas=num_replicas, rank=rank, shuffle=True,
                         drop_last=drop_last)
        self.lengths, self.seed = np.asarray(lengths), seed

    def global_batches(self):
        """Every rank's batches of this epoch, in order."""
        rng = np.random.RandomState(self.seed + self.epoch)
        perm = rng.permutation(len(self.lengths))
        mega = self.batch_size * 50
        batches = []
        for s in range(0, len(perm), mega):
            chunk = perm[s:s + mega]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self):
        batches = self.global_batches()
        wrapped = batches + batches[:len(self) * self.nranks - len(batches)]
        yield from wrapped[self.local_rank::self.nranks]

    def __len__(self):
        n = len(self.lengths) // self.batch_size
        n = n if self.drop_last or len(self.lengths) % self.batch_size == 0 else n + 1
        return math.ceil(n / self.nranks)


CHECKPOINT_DONE = ".checkpoint_done"  # PaddleNLP's name for the marker (it writes one only under FLAG_LLM_PDC)


def log_cpu_threads(device):
    """Paddle's CPU kernels use one OpenMP thread unless OMP_NUM_THREADS says otherwise (scripts/common.sh sets
    it to the cores per training process): say which, so that a slow run shows why. Importing Paddle sets the
    variable to 1 when it is unset, so it is always there by now."""
    if str(device).startswith("cpu"):
        logger.info(f"CPU threads per process: {os.environ.get('OMP_NUM_THREADS', '1')}")


def checkpoints(output_dir):
    """checkpoint-N directories of `output_dir`, by step."""
    found = (re.fullmatch(r"checkpoint-(\d+)", d) for d in os.listdir(output_dir))
    return [os.path.join(output_dir, m.group(0)) for m in sorted(filter(None, found), key=lambda m: int(m.group(1)))]


def checkpoint_files(path):
    """{relative path: size} of every file of a checkpoint but its marker."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            full = os.path.join(root, f)
            rel = os.path.relpath(full, path)
            if rel != CHECKPOINT_DONE:
                out[rel] = os.path.getsize(full)
    return out


def write_checkpoint_marker(path, step):
    """The marker, written last and atomically: the step and every file with its size."""
    done, files = os.path.join(path, CHECKPOINT_DONE), checkpoint_files(path)
    with open(done + ".tmp", "w") as f:
        json.dump({"step": step, "files": files}, f)
    os.replace(done + ".tmp", done)


def is_complete(path):
    """The checkpoint has its marker and every file the marker lists, at its size (a kill while rotation deletes an
    older checkpoint leaves it half deleted, marker included)."""
    try:
        with open(os.path.join(path, CHECKPOINT_DONE)) as f:
            text = f.read()
    except OSError:
        return False
    if text.strip().isdigit():
        return True  # a marker of an older version of this project: the step alone
    try:
        listed = json.loads(text)["files"]
    except (ValueError, KeyError, TypeError):
        return False
    return all(os.path.isfile(os.path.join(path, rel)) and os.path.getsize(os.path.join(path, rel)) == size
               for rel, size in listed.items())


def last_complete_checkpoint(output_dir):
    """The newest complete checkpoint-N of `output_dir` (is_complete), or None. Newer ones that are not were being
    written (or deleted) when a run was killed: they are removed, with a warning."""
    for path in reversed(checkpoints(output_dir)):
        if is_complete(path):
            return path
        logger.warning(f"{path} is incomplete (the run stopped while writing or deleting it); removing it")
        shutil.rmtree(path, ignore_errors=True)  # every rank of a distributed run does this
    return None


def remove_checkpoints(output_dir):
    """--overwrite_output_dir: an earlier run's checkpoints go (a fresh run's lower steps would otherwise be rotated
    away before them)."""
    for path in checkpoints(output_dir):
        logger.info(f"--overwrite_output_dir: removing {path}")
        shutil.rmtree(path, ignore_errors=True)


class JointTrainer(Trainer):
    """Trainer whose checkpoints are complete or ignored: the completion marker is written last, and old
    checkpoints are rotated only after it (PaddleNLP 2.8 rotates before, and only when local_rank == 0, which a
    single CPU process never has (-1): --save_total_limit was ignored)."""

    def __init__(self, *args, teacher=None, rdrop_alpha=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher  # a distillation.Teacher: its softened logits are extra training targets
        self.rdrop_alpha = rdrop_alpha  # > 0: R-Drop (model.rdrop_loss) between two runs of each training batch

    def _save_checkpoint(self, model, metrics=None):
        self._rotation_deferred = True
        try:
            super()._save_checkpoint(model, metrics=metrics)
        finally:
            self._rotation_deferred = False
        if self.args.should_save:
            path = os.path.join(self.args.output_dir, f"checkpoint-{self.state.global_step}")
            write_checkpoint_marker(path, self.state.global_step)
            self._rotate_checkpoints(use_mtime=False, output_dir=self.args.output_dir)  # by step: mtimes can tie

    def compute_loss(self, model, inputs, return_outputs=False):
        if not model.training or (self.teacher is None and not self.rdrop_alpha):
            return super().compute_loss(model, inputs, return_outputs)
        slot_label = inputs["slot_label"]
        teacher_logits = self.teacher.logits(inputs) if self.teacher is not None else None
        loss, (_, outputs) = super().compute_loss(model, dict(inputs), return_outputs=True)  # it pops the labels
        if self.rdrop_alpha:
            second_loss, (_, second) = super().compute_loss(model, dict(inputs), return_outputs=True)
            loss = (loss + second_loss) / 2 + self.rdrop_alpha * rdrop_loss(outputs, second, slot_label)
        if self.teacher is not None:
            alpha = self.teacher.alpha
            loss = (1 - alpha) * loss + alpha * distillation_loss(outputs, teacher_logits, slot_label,
                                                                  self.teacher.temperature)
        return (loss, (loss, outputs)) if return_outputs else loss

    def _rotate_checkpoints(self, *args, **kwargs):
        if not getattr(self, "_rotation_deferred", False):
            super()._rotate_checkpoints(*args, **kwargs)

    def _get_train_sampler(self):
        lengths = getattr(self.train_dataset, "lengths", None) or [len(x["input_ids"]) for x in self.train_dataset]
        return LengthGroupedBatchSampler(lengths,
                                         self.args.per_device_train_batch_size,
                                         num_replicas=max(1, self.args.dataset_world_size),
                                         rank=max(0, self.args.dataset_rank),
                                         drop_last=self.args.dataloader_drop_last, seed=self.args.seed)


class StepSeeds(TrainerCallback):
    """Each optimizer step's dropout draws from Paddle's generators seeded from (--seed, step), so a resumed run
    draws what the uninterrupted one drew. Paddle 2.6 saves the CPU generator's state as its seed alone, so the
    state PaddleNLP restores from a checkpoint restarts the stream from the beginning instead."""

    def on_step_begin(self, args, state, control, **kwargs):
        paddle.seed((args.seed * 1_000_003 + state.global_step) % 2 ** 62)


def make_trainer(setup, args, train=True, trainer_class=JointTrainer, **kwargs):
    """A JointTrainer (or `trainer_class`, given `kwargs`) over the run's encoded train and dev examples."""
    s = setup.settings
    encode = lambda ex: encode_examples(ex, setup.tokenizer, setup.labels, s.max_seq_length,  # noqa: E731
                                        s.context_turns, s.max_context_length)
    train_set = encode(setup.train_ex) if train else None
    trainer = trainer_class(model=setup.model,
                            criterion=JointLoss(crf=setup.model.crf),
                            args=args, data_collator=Collator(setup.tokenizer.pad_token_id), train_dataset=train_set,
                            eval_dataset=encode(setup.dev_ex) if setup.dev_ex else None,
                            tokenizer=setup.tokenizer, teacher=setup.teacher, rdrop_alpha=setup.rdrop_alpha, **kwargs)
    if train:
        trainer.add_callback(StepSeeds())
    return trainer


def make_compute_metrics(labels, slotless, crf=None):
    """Sentence and intent accuracy of the Trainer's evaluation: slot argmax, or with `crf` (the model's
    LinearChainCrf) the Viterbi path over each query's tokens under its current scores."""
    def compute_metrics(p):
        intent_logits, slot_logits = p.predictions[0], p.predictions[1]
        intent_gold, slot_gold = p.label_ids[0], p.label_ids[1]
        slot_pred = np.argmax(slot_logits, -1)
        if crf is not None:
            scores = decoding.check_transitions(crf.scores(), len(labels.slots))
            for k, gold in enumerate(slot_gold):
                query = np.flatnonzero(gold != PAD_SLOT_ID)
                if len(query):
                    slot_pred[k, query] = decoding.constrained_viterbi(slot_logits[k, query], scores, labels,
                                                                       labels.slot_types, [False] * len(query))
        return metrics.sentence_metrics(np.argmax(intent_logits, -1), intent_gold, slot_pred, slot_gold, labels,
                                     slotless)
    return compute_metrics
