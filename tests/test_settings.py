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
