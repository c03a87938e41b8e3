"""Knowledge distillation for fine-tuning (run_train.py --distill_from): a fine-tuned teacher's intent and slot
logits, softened by a temperature T, are extra targets (Hinton et al., 2015). The training loss is
(1 - alpha) * the loss on the gold labels + alpha * T^2 * (KL(teacher || student) of the intent + the mean KL of
the slot labels over the query's tokens)."""
import os

import numpy as np
import paddle
from paddlenlp.transformers import AutoTokenizer

from slu import data, manifest
from slu.data import UsageError
from slu.model import JointErnie, intent_slot_kl


class Teacher:
    """A fine-tuned model directory, checked against the student's run, run without gradients on the student's
    batches (token ids mapped through the vocabularies: embedding pruning orders them differently)."""

    def __init__(self, teacher_dir, student_tokenizer, labels, settings, alpha, temperature):
        where = f"--distill_from {teacher_dir}"
        for name, mine in (("intent_label.txt", labels.intents), ("slot_label.txt", labels.slots)):
            path = os.path.join(teacher_dir, name)
            if not os.path.isfile(path):
                raise UsageError(f"{where}: no {name} (give a directory written by run_train.py)")
            if data.read_label_file(path) != mine:
                raise UsageError(f"{path}: not this run's labels (the teacher's outputs would mean other labels)")
        saved = manifest.read(teacher_dir) if os.path.isfile(os.path.join(teacher_dir, manifest.NAME)) else {}
        if saved.get("context_turns", 0) != settings.context_turns:
            raise UsageError(f"{where}: the teacher reads {saved.get('context_turns', 0)} context turns, this run "
                             f"{settings.context_turns}")
        teacher_vocab = AutoTokenizer.from_pretrained(teacher_dir).get_vocab()
        student_vocab = [t for t, _ in sorted(student_tokenizer.get_vocab().items(), key=lambda x: x[1])]
        missing = [t for t in student_vocab if t not in teacher_vocab]
        if missing:
            raise UsageError(f"{where}: {len(missing)} tokens of the student's vocabulary are not in the teacher's "
                             f"(e.g. {missing[0]!r}); start both from the same vocabulary")
        self.id_map = paddle.to_tensor(np.array([teacher_vocab[t] for t in student_vocab], dtype="int64"))
        with paddle.utils.unique_name.guard("teacher_"):
            self.model = JointErnie.from_pretrained(teacher_dir, intent_dim=len(labels.intents),
                                                    slot_dim=len(labels.slots))
        needed = settings.max_seq_length + settings.max_context_length
        if needed > self.model.config.max_position_embeddings:
            raise UsageError(f"{where}: the teacher has {self.model.config.max_position_embeddings} position "
                             f"embeddings, this run needs {needed}")
        self.model.eval()
        for p in self.model.parameters():
            p.stop_gradient = True
        self.alpha, self.temperature = alpha, temperature

    def logits(self, inputs):
        """(intent_logits, slot_logits) of the teacher for a collated batch of the student."""
        ids = inputs["input_ids"]
        teacher_ids = paddle.gather(self.id_map, ids.reshape([-1]).astype("int64")).reshape(ids.shape)
        types = inputs.get("token_type_ids")
        with paddle.no_grad():
            return self.model(teacher_ids, token_type_ids=types)


def distillation_loss(student, teacher, slot_label, temperature):
    """T^2 * (mean over queries of KL(teacher || student) of the intent distribution + mean over the query tokens
    (slot label != PAD) of KL of the slot-label distribution), both at temperature T."""
    return temperature * temperature * intent_slot_kl(teacher, student, slot_label, temperature)
