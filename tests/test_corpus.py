from pathlib import Path

import pytest

from rag.corpus import clean_text, html_to_text, load_file, load_folder_or_files
from rag.errors import RagError

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def test_bundled_corpus_loads_with_metadata():
    res = load_folder_or_files([CORPUS])
    assert not res.errors
    docs = {d.id: d for d in res.documents}
    assert sorted(docs) == sorted(p.stem for p in CORPUS.glob("*.txt"))
    assert docs["002_16b296b6a56de0e8"].language == "it"
    assert docs["000_8be7b5971cd718b3"].date == "2023-09-15"
    assert all(len(d.content_hash) == 64 for d in docs.values())


def test_language_detected_without_metadata(tmp_path):
    (tmp_path / "a.txt").write_text("Questa settimana Alibaba ha rilasciato il suo modello al pubblico.")
    (tmp_path / "b.txt").write_text("This week Alibaba released its model to the public, the company said.")
    docs = {d.id: d for d in load_folder_or_files([tmp_path]).documents}
    assert docs["a"].language == "it" and docs["b"].language == "en"


def test_boilerplate_removed_from_decoder_article():
    doc = load_file(CORPUS / "004_d8b5d23c2dad080a.txt")
    assert "Join our community" not in doc.text
    assert "Join the DECODER community" not in doc.text
    assert "Support our independent" not in doc.text and "Bank transfer" not in doc.text
    assert "co-founder and publisher" not in doc.text
    # the article itself is intact
    assert "Tmall Genie" in doc.text and "Baidu's chatbot Ernie" in doc.text


def test_clean_text_drops_repeated_lines_keeps_single_ones():
    text = "Subscribe to our newsletter\nReal sentence one here.\nFollow the story below please.\nFollow the story below please."
    # boilerplate goes; a repeated line keeps its first copy (issue 12: both copies were lost)
    assert clean_text(text) == "Real sentence one here.\nFollow the story below please."


def test_html_keeps_article_drops_navigation():
    html = """<html><head><title>T</title><script>var x=1;</script></head><body>
    <nav><a href="/">Home</a> <a href="/news">News menu</a></nav>
    <article><h1>Big headline</h1><p>First paragraph of the story.</p><p>Second one.</p></article>
    <footer>Copyright footer text</footer></body></html>"""
    text, title = html_to_text(html)
    assert title == "Big headline"
    assert "First paragraph of the story." in text and "Second one." in text
    assert "News menu" not in text and "Copyright" not in text and "var x" not in text


@pytest.mark.parametrize("name,content,message", [
    ("empty.txt", b"", "empty file"),
    ("blank.md", b"  \n\n ", "empty file"),
    ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20, "binary"),
    ("latin1.txt", "Città già così".encode("latin-1"), "not UTF-8"),
    ("doc.odt", b"PK\x03\x04 an OpenDocument text", "unsupported file type"),
    ("doc.pdf", b"%PDF-1.4 hello", "the PDF cannot be read"),  # damaged: found when loaded
])
def test_bad_files_are_reported_and_skipped(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    (tmp_path / "good.txt").write_text("A good article about Alibaba and its Qwen model.")
    res = load_folder_or_files([tmp_path])
    assert [d.id for d in res.documents] == ["good"]
    assert len(res.errors) == 1 and message in res.errors[0][1]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RagError, match="no such file or folder"):
        load_folder_or_files([tmp_path / "nope"])
