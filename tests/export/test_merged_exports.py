"""Merged exports a user runs elsewhere: q4_k_m GGUF (+ Modelfile) and an HF folder."""

from __future__ import annotations

import pytest
from export_report import REPORT
from equivalence import agreement, hf_logits, llama_logits
from ollama_parser import check_go_template, check_parameters, parse

from ohlora.personas import load_persona

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("key,persona_id", [("gemma", "ohlora"), ("smollm2", "ironman")])
def test_q4_k_m_export_loads_in_llama_cpp_and_answers(key, persona_id, lora_cases, tmp_path):
    import llama_cpp
    from gguf import GGUFReader

    from ohlora.prompt import build_messages, template_for
    from training.export import export

    case = lora_cases(key)
    persona = load_persona(persona_id)
    folder = tmp_path / "exports"
    result = export(case.adapter_dir, case.base, "gguf", "q4_k_m", out=folder / "merged.gguf", persona=persona)
    assert result.output.is_file() and result.modelfile == folder / "merged.Modelfile"
    types = {t.tensor_type.name for t in GGUFReader(str(result.output)).tensors}
    assert "F16" not in types and "Q4_K" in types
    assert sorted(p.name for p in folder.iterdir()) == ["merged.Modelfile", "merged.gguf"]

    mf = parse(result.modelfile.read_text(encoding="utf-8"))
    check_parameters(mf)
    check_go_template(mf.get("template")[0])
    assert mf.get("model") == ["./merged.gguf"] and mf.get("system") == [persona.system_prompt.strip()]

    # plain llama-cpp-python, nothing of ours: load, then answer a persona prompt
    from datetime import datetime

    prompt = template_for(case.base).render(
        build_messages(persona, [], [], persona.examples[0].user, datetime(2026, 1, 5, 12, 0), include_examples=False),
        add_generation_prompt=True,
    )
    llm = llama_cpp.Llama(str(result.output), n_ctx=1024, verbose=False, n_threads=2)
    out = llm.create_completion(prompt, max_tokens=24, temperature=0.0, stop=list(mf.get("stop")))
    text = out["choices"][0]["text"]
    llm.close()
    assert text.strip(), out

    q4km = agreement(case.hf(True), llama_logits(result.output, None, case.ids))
    REPORT.setdefault(key, {})["merged_q4_k_m_vs_peft"] = q4km.as_dict()
    REPORT[key]["merged_q4_k_m_answer"] = text.strip()[:80]
    print(key, "q4_k_m", q4km.as_dict(), repr(text))
    assert q4km.corr_mean >= 0.95


def test_hf_export_equals_peft(lora_cases, tmp_path):
    from training.export import export

    case = lora_cases("smollm2")
    out = export(case.adapter_dir, case.base, "hf", out=tmp_path / "hf").output
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not (out / "adapter_config.json").exists()
    merged = agreement(case.hf(True), hf_logits(out, None, case.ids))
    REPORT.setdefault("smollm2", {})["merged_hf_vs_peft"] = merged.as_dict()
    assert merged.top1 >= 0.99 and merged.corr_mean >= 0.9999
