import subprocess
import sys

import rag


def test_public_api_is_pinned():
    assert rag.__all__ == ["Bot", "Config", "Answer", "Citation", "Passage", "IngestReport", "RagError"]
    for name in rag.__all__:
        assert getattr(rag, name) is not None


def test_import_is_cheap():
    code = ("import sys, rag; heavy = [m for m in ('torch', 'chromadb', 'llama_cpp', 'gradio', "
            "'sentence_transformers') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_config_reads_environment():
    from rag.config import Config

    c = Config.from_env({"RAG_TOP_K": "3", "RAG_CHROMA_URL": "http://127.0.0.1:9", "RAG_ALLOW_DOWNLOADS": "no"})
    assert c.top_k == 3 and c.store_mode == "server" and c.allow_downloads is False
