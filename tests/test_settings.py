"""Where a run's derived settings come from: training.resolve_settings, the one function that works them out (a flag,
else the exported directory's deploy_config.json, else the default), returning them and leaving the flags alone."""
import dataclasses

from slu.training import DataArguments, Settings, resolve_settings

SAVED = {"max_seq_length": 32, "context_turns": 2, "max_context_length": 24, "slot_decoding": "crf"}


def test_defaults_without_flags_or_an_export():
    assert resolve_settings(DataArguments()) == Settings(16, 0, 0, "argmax")
    assert resolve_settings(DataArguments(context_turns=2)) == Settings(16, 2, 32, "argmax")  # 16 tokens a turn


def test_an_exported_directory_gives_what_the_flags_leave_open():
    assert resolve_settings(DataArguments(), SAVED) == Settings(32, 2, 24, "crf")
    assert resolve_settings(DataArguments(max_seq_length=20, slot_decoding="constrained"), SAVED) == \
        Settings(20, 2, 24, "constrained")
    # a context length is the export's only while its context is; turning context off drops it
    assert resolve_settings(DataArguments(context_turns=0, max_context_length=40), SAVED) == Settings(32, 0, 0, "crf")
    assert resolve_settings(DataArguments(max_context_length=40), SAVED).max_context_length == 40
    single = dict(SAVED, context_turns=0, max_context_length=0)
    assert resolve_settings(DataArguments(context_turns=1), single) == Settings(32, 1, 16, "crf")


def test_the_parsed_flags_are_left_as_given():
    args = DataArguments(context_turns=1)
    before = dataclasses.asdict(args)
    resolve_settings(args, SAVED)
    assert dataclasses.asdict(args) == before


def compression_args(tmp_path, *flags):
    from paddlenlp.trainer import PdArgumentParser

    from slu.training import TrainingArguments

    (args,) = PdArgumentParser(TrainingArguments).parse_args_into_dataclasses(
        args=["--output_dir", str(tmp_path), "--do_compress", *flags])
    return args


def test_compression_works_out_its_trainer_arguments_once_on_a_copy(tmp_path):
    """What Trainer.compress reads: the strategy in PaddleNLP's order, the width as a number, save_steps no more
    than the run's steps (40 queries / batch 8 x 2 epochs = 10); the parsed arguments stay as given."""
    from slu.compression import trainer_args

    args = compression_args(tmp_path, "--strategy", "embeddings+qat+dynabert", "--width_mult_list", "3/4",
                            "--save_steps", "500", "--per_device_train_batch_size", "8", "--num_train_epochs", "2")
    before = dict(vars(args))
    got = trainer_args(args, train_size=40)
    assert (got.strategy, got.width_mult_list, got.save_steps) == ("dynabert+qat+embeddings", ["0.75"], 10)
    assert vars(args) == before and got is not args
    kept = trainer_args(compression_args(tmp_path, "--strategy", "dynabert", "--max_steps", "30", "--save_steps",
                                         "20"), train_size=40)
    assert (kept.strategy, kept.width_mult_list, kept.save_steps) == ("dynabert", ["0.75"], 20)
