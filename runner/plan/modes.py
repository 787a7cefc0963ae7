"""Which models fit a benchmark's endpoint, by LiteLLM's `mode` of each model.

LiteLLM's modes (litellm/types/router.py `ModelGroupInfo.mode`): chat, completion, embedding,
image_generation, audio_transcription, rerank, moderations, responses, ... A `chat` benchmark
calls /v1/chat/completions: only `chat` models fit. A `completions` benchmark calls
/v1/completions, which LiteLLM also serves with a chat model (`text_completion` in
litellm/main.py sends the prompt as one user message): `completion` and `chat` models fit.
An `embeddings` benchmark calls /v1/embeddings: only `embedding` models fit (and a chat
benchmark never takes one). A `responses` benchmark calls /v1/responses, which LiteLLM serves
natively for `responses` models and by its chat bridge (litellm/responses/
litellm_completion_transformation) for `chat` ones: `responses` and `chat` models fit.
A model whose mode is unknown fits chat, completions and responses: runner cannot tell, so it
does not skip it. Embedding models are few beside chat ones, and a chat model cannot embed: an
embeddings benchmark takes a model whose mode is unknown only when one of its terms names that
model exactly (`models: "all"` or a glob never sends embeddings requests to every chat model).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

FITTING_MODES: Mapping[str, frozenset[str]] = {
    "chat": frozenset({"chat"}),
    "completions": frozenset({"completion", "chat"}),
    "responses": frozenset({"responses", "chat"}),
    "embeddings": frozenset({"embedding"}),
}
DEFAULT_ENDPOINT = "chat"
KNOWN_MODE_ONLY = frozenset({"embeddings"})  # endpoints an unknown mode fits only when named
UNKNOWN = "unknown"  # the mode misfits() gives a model it skips for not knowing its mode


def fits(mode: str | None, endpoints: Iterable[str]) -> bool:
    """Whether a model of `mode` (None: unknown) can serve every one of `endpoints`."""
    return mode is None or all(mode in FITTING_MODES.get(e, frozenset({mode}))
                               for e in endpoints)


def misfits(models: Iterable[str], modes: Mapping[str, str | None], endpoints: Iterable[str],
            named: Iterable[str] = ()) -> tuple[tuple[str, str], ...]:
    """(id, mode) of each of `models` whose known mode does not fit `endpoints`, in order; and
    for an embeddings benchmark, (id, UNKNOWN) of each model `modes` lists with no mode that
    is not in `named` (the ids its pattern's terms name exactly)."""
    wanted = tuple(endpoints)
    strict = not KNOWN_MODE_ONLY.isdisjoint(wanted)
    exact = frozenset(named)
    found = []
    for m in models:
        mode = modes.get(m)
        if mode is not None and not fits(mode, wanted):
            found.append((m, mode))
        elif mode is None and strict and m in modes and m not in exact:
            found.append((m, UNKNOWN))
    return tuple(found)


def wanted_modes(endpoints: Iterable[str]) -> str:
    """What to select for `endpoints`, as words: `select chat or completion models`, or, when
    no mode fits them all (a matrix over chat and embeddings), to split the benchmark."""
    wanted = sorted(set(endpoints))
    sets = [FITTING_MODES[e] for e in wanted if e in FITTING_MODES]
    fitting = sorted(frozenset.intersection(*sets)) if sets else []
    if not fitting:
        return f"no mode fits all of its endpoints ({', '.join(wanted)}): give each a benchmark"
    return f"select {' or '.join(fitting)} models"
