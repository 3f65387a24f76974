"""The study's Alpaca prompt for models without a chat template."""

from __future__ import annotations

from mmedkit.alpaca import PROMPT_INPUT, PROMPT_NO_INPUT, render_messages


def test_system_and_user_give_the_studys_prompt_input_exactly() -> None:
    msgs = [{"role": "system", "content": "You're a doctor."}, {"role": "user", "content": "Fever, what now?"}]
    assert render_messages(msgs) == PROMPT_INPUT.format(instruction="You're a doctor.", input="Fever, what now?")
    assert render_messages(msgs).startswith("Below is an instruction that describes a task, paired with an input")


def test_user_alone_is_the_instruction_and_turns_repeat_the_block() -> None:
    one = [{"role": "user", "content": "Fever?"}]
    assert render_messages(one) == PROMPT_NO_INPUT.format(instruction="Fever?")
    two = [*one, {"role": "assistant", "content": "Rest."}, {"role": "user", "content": "And cough?"}]
    assert render_messages(two) == (PROMPT_NO_INPUT.format(instruction="Fever?") + "Rest.\n\n### Instruction:\n"
                                    "And cough?\n\n### Response:")


def test_hf_backend_renders_messages_without_a_chat_template(tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    from mmedkit.models.hf import render_prompt

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = None
    msgs = [{"role": "user", "content": "Fever?"}]
    assert render_prompt(tok, "base", msgs) == (PROMPT_NO_INPUT.format(instruction="Fever?"), True)


def test_chat_format_on_a_base_model_is_the_study_prompt_byte_for_byte() -> None:
    from mmedkit.bench.loader import load_benchmark
    from mmedkit.bench.prompts import PromptConfig, build_prompt

    for item in load_benchmark("demo", limit=2):
        for rationale in (False, True):
            chat = build_prompt(item, PromptConfig(format="chat", rationale=rationale))
            assert render_messages(chat) == build_prompt(item, PromptConfig(rationale=rationale))
