"""The Ollama Modelfile: parses under Ollama's rules, with the persona's prompt and settings."""

from __future__ import annotations

import pytest
from ollama_parser import ModelfileError, check_go_template, check_parameters, parse

from ohlora.errors import UserError
from ohlora.models import resolve_base
from ohlora.personas import load_persona
from training.modelfile import ModelfileSpec, TEMPLATES, render, spec_for


def test_parser_rejects_what_ollama_rejects():
    with pytest.raises(ModelfileError, match="no FROM"):
        parse("SYSTEM hi\n")
    with pytest.raises(ModelfileError, match="unknown command"):
        parse("FROM x\nTEMPERATURE 3\n")
    with pytest.raises(ModelfileError, match="end of file"):
        parse('FROM x\nSYSTEM """never closed\n')
    mf = parse('# c\nfrom ./a.gguf\nPARAMETER stop "<end_of_turn>"\nSYSTEM """two\nlines"""\nMESSAGE user hi there\n')
    assert mf.commands == [("model", "./a.gguf"), ("stop", "<end_of_turn>"), ("system", "two\nlines"),
                           ("message", "user: hi there")]
    with pytest.raises(ModelfileError):
        check_go_template("{{ if .System }}x")


@pytest.mark.parametrize("persona_id", ["ohlora", "ironman"])
def test_gemma_persona_modelfile(tmp_path, persona_id, gemma_gguf):
    persona = load_persona(persona_id)
    base = resolve_base("")
    text = render(spec_for(tmp_path / f"{persona_id}-q4_k_m.gguf", base, persona, tmp_path))
    mf = parse(text)
    check_parameters(mf)
    assert mf.get("model") == [f"./{persona_id}-q4_k_m.gguf"]
    assert mf.get("system") == [persona.system_prompt.strip()]
    assert mf.get("template") == [TEMPLATES["gemma"][0]]
    check_go_template(mf.get("template")[0])
    assert "<end_of_turn>" in mf.get("stop")
    assert float(mf.get("temperature")[0]) == persona.generation.temperature
    assert int(mf.get("num_predict")[0]) == persona.generation.max_tokens
    assert float(mf.get("repeat_penalty")[0]) == persona.generation.repeat_penalty


def test_smollm2_modelfile_uses_chatml(tmp_path, smollm2_gguf):
    persona = load_persona("ironman")
    text = render(spec_for(tmp_path / "m.gguf", resolve_base("smollm2"), persona, tmp_path))
    mf = parse(text)
    check_parameters(mf)
    template = mf.get("template")[0]
    check_go_template(template)
    assert "<|im_start|>" in template
    assert "<|im_end|>" in mf.get("stop")
    assert "<end_of_turn>" not in mf.get("stop")  # Gemma markers are meaningless here


def test_awkward_values_round_trip():
    spec = ModelfileSpec(source="/models/my model.gguf", template_kind=None, system='He said "hi"\nthen left',
                         stop=["END", "two words"], parameters={"seed": 42})
    mf = parse(render(spec))
    assert mf.get("model") == ["/models/my model.gguf"]
    assert mf.get("system") == ['He said "hi"\nthen left']
    assert mf.get("stop") == ["END", "two words"]
    with pytest.raises(UserError):
        render(ModelfileSpec(source="x", template_kind=None, system='ends with a quote"'))
