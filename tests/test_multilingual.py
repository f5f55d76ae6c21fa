"""The multilingual embedder (rag/e5.py, rag/language_bias.py): built from the packaged data file,
checked by what users rely on. Real package file, real assembly, real OpenVINO export; no mocks."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rag import e5
from rag.embedding import Embedder
from rag.errors import RagError

# one passage in three languages, and unrelated passages in the same three languages
HARBOUR = {"en": "The harbour reopened to ships on Friday after the storm had damaged its cranes.",
           "zh": "风暴损坏了港口的起重机，港口于周五重新向船只开放。",
           "it": "Il porto ha riaperto alle navi venerdì, dopo che la tempesta aveva danneggiato le gru."}
UNRELATED = {"en": ["The orchestra will tour three countries next summer with a new programme.",
                    "A new law lowers the tax on electric cars from January."],
             "zh": ["管弦乐团明年夏天将带着新的曲目在三个国家巡演。", "一项新法律从一月起降低电动汽车的税收。"],
             "it": ["L'orchestra andrà in tournée in tre paesi la prossima estate con un nuovo programma.",
                    "Una nuova legge riduce da gennaio la tassa sulle auto elettriche."]}


def test_an_english_question_finds_the_passage_in_every_language(embedder):
    """What users rely on: asked in any of the three languages, the three versions of the passage
    rank ahead of every unrelated passage, whatever their language."""
    assert embedder.model_name == "multilingual-e5-small" and embedder.centered
    texts = list(HARBOUR.values()) + [t for ts in UNRELATED.values() for t in ts]
    langs = list(HARBOUR) + [lang for lang, ts in UNRELATED.items() for _ in ts]
    passages = embedder.center(embedder.encode(texts), langs)
    questions = {"en": "When did the harbour reopen after the storm?", "zh": "风暴过后港口什么时候重新开放？",
                 "it": "Quando ha riaperto il porto dopo la tempesta?"}
    q = embedder.encode_queries(list(questions.values()), list(questions))
    scores = q @ passages.T
    for i, lang in enumerate(questions):
        top3 = set(np.argsort(-scores[i])[:3])
        assert top3 == {0, 1, 2}, f"{lang} question: ranking {np.argsort(-scores[i]).tolist()}"


def test_language_bias_is_removed(embedder):
    """Without centring, a Chinese question lands on Chinese text whatever it says; with it, on the
    English passage that answers it (the reason for rag/language_bias.py)."""
    texts = [HARBOUR["en"], UNRELATED["zh"][0], UNRELATED["zh"][1]]
    langs = ["en", "zh", "zh"]
    question = "风暴过后港口什么时候重新开放？"
    raw_p, raw_q = embedder.encode(texts), embedder.encode([question], kind="query")
    centred = embedder.center(raw_p, langs) @ embedder.encode_queries([question], ["zh"])[0]
    assert int(np.argmax(centred)) == 0, centred.round(3).tolist()
    raw = raw_p @ raw_q[0]
    gap_raw = float(raw[0] - raw[1:].max())
    gap_centred = float(centred[0] - centred[1:].max())
    assert gap_centred > gap_raw  # the English answer gains on the unrelated Chinese texts


def test_prefixes_and_limits_come_from_the_model_folder(embedder):
    assert embedder.prompts == e5.PROMPTS
    assert embedder.max_seq_length == 512
    # the passage prefix counts against the limit: pieces of a text include "passage: "
    assert embedder.word_pieces("ciao") > len(embedder._tokenizer.encode("ciao").ids)
    long = "parola " * 2000
    assert not embedder.fits(long)
    v = embedder.encode([long])  # longer than 512 positions: truncated, not an error
    assert v.shape == (1, 384) and abs(float(np.linalg.norm(v[0])) - 1) < 1e-3


def test_openvino_agrees_with_the_dequantised_model_on_torch(embedder, tmp_path_factory):
    """The exported model computes what the assembled BERT computes (sentence-transformers on
    torch reading the same folder): cosine >= 0.999 (bf16 matrix products round to 8 bits of
    mantissa with float32 sums: measured >= 0.99999 on AMD EPYC Zen 5; float32 where the CPU has
    no bf16)."""
    torch_e = Embedder("multilingual-e5-small", backend="torch", cache_root=embedder.cache_root)
    texts = list(HARBOUR.values()) + UNRELATED["en"]
    cos = (torch_e.encode(texts) * embedder.encode(texts)).sum(1)
    assert cos.min() >= 0.999, cos.round(5).tolist()


def test_the_float32_path_of_an_avx2_only_cpu_agrees_with_torch(embedder, monkeypatch):
    """Where the CPU has no native bfloat16 (AMD EPYC Zen 3: AVX2 and FMA only) OpenVINO runs in
    float32 (issue 20). That path, forced here on whatever CPU runs the tests: float32 differs from
    torch only in summation order, so cosine >= 0.9999 (the onnx float32 floor); on a CPU with bf16
    its vectors are not the bf16 path's (the path really changed)."""
    from rag import embedding

    real, _ = embedding.openvino_precision()
    texts = list(HARBOUR.values()) + UNRELATED["en"]
    default = embedder.encode(texts)  # the machine's own path (loaded before the switch)
    monkeypatch.setattr(embedding, "openvino_precision", lambda core=None: ("f32", "no native bfloat16"))
    f32 = Embedder("multilingual-e5-small", backend="openvino", cache_root=embedder.cache_root)
    torch_e = Embedder("multilingual-e5-small", backend="torch", cache_root=embedder.cache_root)
    v32 = f32.encode(texts)
    cos = (torch_e.encode(texts) * v32).sum(1)
    assert cos.min() >= 0.9999, cos.round(6).tolist()
    assert embedding.runtime_description("openvino").startswith("openvino f32")
    if real == "bf16":
        assert not np.array_equal(v32, default)


def test_the_precision_follows_the_cpus_capabilities():
    """bf16 only where OpenVINO reports native bfloat16 (its CPU plugin's capabilities)."""
    from rag.embedding import openvino_precision

    class Core:  # OpenVINO's answer for each kind: Zen 3 has no BF16 entry, Zen 4/5 and Xeon do
        def __init__(self, caps):
            self.caps = caps

        def get_property(self, device, name):
            assert (device, name) == ("CPU", "OPTIMIZATION_CAPABILITIES")
            return self.caps

    assert openvino_precision(Core(["FP32", "INT8", "BIN", "EXPORT_IMPORT"]))[0] == "f32"
    assert openvino_precision(Core(["FP32", "BF16", "INT8", "BIN", "EXPORT_IMPORT"]))[0] == "bf16"


def test_the_tokenizer_applies_the_files_own_normalisation():
    """The tokenizer.json's normaliser (control characters dropped, odd spaces to spaces, NFKC)
    gives the same ids as the file's per-codepoint map applied by hand, on varied text."""
    model = e5.read(e5.data_file())
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(e5._tokenizer_json(model))
    norm = model["norm"]
    samples = ["Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ and café", "tab\there\u3000ideographic\u200bzero", "通义千问（Qwen）于２０２３年９月１３日开放。",
               "Perché l'IA è già qui?  Due   spazi.", "ﬁ ligature ½ ㎏ ①"]
    for s in samples:
        by_map = "".join(norm.get(ord(c), c) for c in s)
        by_map = " ".join(by_map.split(" "))
        expected = tok.encode(" ".join(by_map.split())).ids
        assert tok.encode(s).ids == expected, s


def test_assembly_is_checked_and_refused_when_the_checksum_does_not_match(tmp_path):
    folder = e5.assemble(tmp_path / "embedders")
    assert e5.verify(folder) is None
    manifest = json.loads((folder / e5.MANIFEST).read_text())
    assert manifest["source_sha256"] == e5.SHA256
    assert {"model.safetensors", "tokenizer.json", "config.json", "1_Pooling/config.json"} <= set(manifest["files"])
    # a damaged assembled file is found on the next load and the folder is assembled again
    with open(folder / "tokenizer.json", "a") as f:
        f.write(" ")
    assert "tokenizer.json does not match" in e5.verify(folder)
    assert e5.verify(e5.assemble(tmp_path / "embedders")) is None
    # a source file that does not match the pinned SHA-256 is refused, never read as a model
    bad = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(e5.data_file(), bad)
    with open(bad, "r+b") as f:
        f.seek(1_000_000)
        f.write(b"\x00\x01")
    with pytest.raises(RagError, match="fails its checksum"):
        e5.assemble(tmp_path / "other", source=bad)
    assert not (tmp_path / "other" / e5.NAME).exists()


def test_a_keyword_list_votes_only_on_passages_in_its_language():
    """Fusion (rag.retrieve._fuse): BM25 cannot see a passage in another language, so its absence
    there is no vote. The docstring's worked example, and the same-language case equal to RRF."""
    from rag.retrieve import RRF_K, _fuse

    payload = {"a": ("", {"language": "zh"}), "b": ("", {"language": "en"})}
    fused = _fuse([(None, ["a", "b"]), ("en", ["b"])], payload)
    assert fused["a"] == pytest.approx(1 / (RRF_K + 1))
    assert fused["b"] == pytest.approx((1 / (RRF_K + 2) + 1 / (RRF_K + 1)) / 2)
    assert fused["a"] > fused["b"]  # summed, b would win: 1/62 + 1/61 > 1/61
    same = {"a": ("", {"language": "en"}), "b": ("", {"language": "en"})}
    fused = _fuse([(None, ["a", "b"]), ("en", ["b"])], same)
    assert fused["b"] > fused["a"]  # one language: plain RRF's order


def test_an_article_and_its_translation_are_read_in_the_askers_language(make_bot, corpus_copy):
    """The bundled ODSC article and its declared Italian translation say the same thing: an English
    question gets the English one (the Italian folded under it), an Italian question the Italian."""
    bot = make_bot(corpus_copy, translate=False)
    bot.ingest()
    en, it = "000_8be7b5971cd718b3", "002_16b296b6a56de0e8"
    got = bot.search("Who replaced Daniel Zhang as the chief of Alibaba's cloud division?", 4)
    docs = [p.doc_id for p in got]
    assert en in docs and it not in docs, docs
    assert any(d["doc_id"] == it for p in got if p.doc_id == en for d in p.duplicates)
    got = bot.search("Chi ha sostituito Daniel Zhang alla guida della divisione cloud di Alibaba?", 4)
    docs = [p.doc_id for p in got]
    assert it in docs and en not in docs, docs


def test_latin_names_inside_chinese_text_are_names():
    """Chinese has no spaces: a Latin name glued to Chinese characters is still that name, so a
    Chinese answer naming it can be checked against an English passage (xlqa-dev zh->it)."""
    from rag import grounding, text

    zh = "戈登森在1954年10月提出UPT和DuMont Television Network合并。"
    assert text.names(zh) == {"upt", "dumont", "television", "network"}
    en = "In October 1954 Goldenson proposed a merger of UPT with the DuMont Television Network."
    assert grounding.support(zh, en, same_language=False).supported
    assert text.names("DuMont合并了") == set()  # a sentence's first word, as in English
