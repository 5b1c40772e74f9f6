"""An Ollama Modelfile for a merged GGUF: FROM, TEMPLATE, SYSTEM, PARAMETER lines.

The templates are Go templates over `.Messages` in Ollama's style. Gemma has no system
role, so (as in `ohlora.prompt.GemmaTemplate`) the system text opens the first user turn;
SmolLM2 and other ChatML models get `<|im_start|>role` turns.

Ollama's parser takes a value as a bare word, a `"quoted"` string or a `\"\"\"triple
quoted\"\"\"` block, with no escapes; values are quoted here accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ohlora.errors import UserError

if TYPE_CHECKING:
    from ohlora.models import BaseModel
    from ohlora.personas import Persona

GEMMA_TEMPLATE = """{{- $sys := "" }}
{{- range $i, $m := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq $m.Role "system" }}{{ $sys = $m.Content }}
{{- else if eq $m.Role "user" }}<start_of_turn>user
{{ if $sys }}{{ $sys }}

{{ end }}{{ $m.Content }}<end_of_turn>
{{ $sys = "" }}{{ if $last }}<start_of_turn>model
{{ end }}
{{- else if eq $m.Role "assistant" }}<start_of_turn>model
{{ $m.Content }}{{ if not $last }}<end_of_turn>
{{ end }}
{{- end }}
{{- end }}"""

CHATML_TEMPLATE = """{{- range $i, $m := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}<|im_start|>{{ $m.Role }}
{{ $m.Content }}
{{- if or (ne $m.Role "assistant") (not $last) }}<|im_end|>
{{ end }}
{{- if and $last (ne $m.Role "assistant") }}<|im_start|>assistant
{{ end }}
{{- end }}"""

LLAMA3_TEMPLATE = """{{- range $i, $m := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}<|start_header_id|>{{ $m.Role }}<|end_header_id|>

{{ $m.Content }}
{{- if or (ne $m.Role "assistant") (not $last) }}<|eot_id|>
{{- end }}
{{- if and $last (ne $m.Role "assistant") }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}
{{- end }}"""

TEMPLATES = {
    "gemma": (GEMMA_TEMPLATE, ("<end_of_turn>", "<start_of_turn>")),
    "chatml": (CHATML_TEMPLATE, ("<|im_end|>", "<|im_start|>")),
    "llama3": (LLAMA3_TEMPLATE, ("<|eot_id|>", "<|start_header_id|>")),
}


@dataclass
class ModelfileSpec:
    source: str  # FROM: a path relative to the Modelfile, or absolute
    template_kind: str | None  # a key of TEMPLATES, or None to leave the GGUF's own
    system: str | None = None
    stop: list[str] = field(default_factory=list)
    parameters: dict[str, float | int] = field(default_factory=dict)


def template_kind_for(base: "BaseModel") -> str | None:
    """Which Ollama template matches the base's chat format (None: unknown, leave it out)."""
    if base.is_gemma:
        return "gemma"
    from ohlora.prompt import template_for

    try:
        source = getattr(template_for(base), "source", "")
    except UserError:
        return None
    if "<|im_start|>" in source:
        return "chatml"
    if "<|start_header_id|>" in source:
        return "llama3"
    return None


def quote(value: str, what: str) -> str:
    """A value in a form Ollama's parser reads back unchanged (it has no escapes)."""
    if value and '"' not in value and "\n" not in value and value == value.strip() and " " not in value:
        return value
    if '"' not in value:
        return f'"{value}"'
    if '"""' not in value and not value.endswith('"'):
        return f'"""{value}"""'
    raise UserError(f"{what} cannot be written to a Modelfile: it contains '\"\"\"' or ends with a quote")


def render(spec: ModelfileSpec) -> str:
    lines = ["# Ollama Modelfile written by `ohlora export`; use: ollama create NAME -f THIS_FILE", ""]
    lines.append(f"FROM {quote(spec.source, 'model path')}")
    if spec.template_kind is not None:
        template, _ = TEMPLATES[spec.template_kind]
        lines.append(f'TEMPLATE """{template}"""')
    if spec.system:
        lines.append(f"SYSTEM {quote(spec.system.strip(), 'system prompt')}")
    seen: set[str] = set()
    for stop in spec.stop:
        if stop and stop not in seen:
            seen.add(stop)
            lines.append(f"PARAMETER stop {quote(stop, 'stop string')}")
    for key, value in spec.parameters.items():
        lines.append(f"PARAMETER {key} {value}")
    return "\n".join(lines) + "\n"


def spec_for(gguf_file: Path, base: "BaseModel", persona: "Persona | None", modelfile_dir: Path) -> ModelfileSpec:
    """The Modelfile for a merged GGUF of `persona` (or a bare adapter) on `base`."""
    kind = template_kind_for(base)
    try:
        source = "./" + str(Path(gguf_file).resolve().relative_to(Path(modelfile_dir).resolve()))
    except ValueError:
        source = str(Path(gguf_file).resolve())
    stop = list(TEMPLATES[kind][1]) if kind else []
    params: dict[str, float | int] = {"num_ctx": 4096}
    system = None
    if persona is not None:
        system = persona.system_prompt
        # the other chat formats' markers make no sense as stops on this base
        foreign = {s for k, (_, stops) in TEMPLATES.items() if k != kind for s in stops}
        stop += [s for s in persona.stop if s not in foreign]
        g = persona.generation
        params.update(
            temperature=g.temperature, top_p=g.top_p, top_k=g.top_k, min_p=g.min_p,
            repeat_penalty=g.repeat_penalty, num_predict=g.max_tokens,
        )
        if g.seed >= 0:
            params["seed"] = g.seed
    return ModelfileSpec(source=source, template_kind=kind, system=system, stop=stop, parameters=params)
