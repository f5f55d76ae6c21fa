"""PDF and DOCX articles (issue 23): text and pages, dates from their properties, clear errors
for scanned, encrypted and damaged PDFs, and citations that name the page, through the real Bot
(real Chroma, real embedder). The PDFs are written by hand here (no PDF-writing dependency):
a page is a content stream of text lines in Helvetica."""
import datetime
import io

import pytest

from rag.cite import make_citations
from rag.corpus import load_file, safe_upload_name, scan_folder_or_files
from rag.errors import RagError
from rag.readers import chunk_pages, page_of, read_docx, read_pdf, unmark_pages, unwrap_lines
from rag.types import Sentence


def pdf_bytes(pages: list[list[str]], info: dict[str, str] | None = None,
              image_only: bool = False, xmp: bytes = b"") -> bytes:
    """A valid PDF: one page per list of text lines; ``image_only`` pages hold a 1x1 image and no
    text (what a scanner makes). ``info``: document information, e.g. {"CreationDate": "D:2023..."};
    ``xmp``: an XMP metadata packet."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
            b"<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 /Length 1 >>\nstream\n\x80\nendstream"]
    kids = []
    for lines in pages:
        if image_only:
            content = b"q 200 0 0 200 72 500 cm /Im1 Do Q"
        else:
            esc = [l.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("cp1252")
                   for l in lines]
            content = b"BT /F1 11 Tf 14 TL 72 740 Td " + b" ".join(b"(%s) Tj T*" % l for l in esc) + b" ET"
        objs.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                    b"/Resources << /Font << /F1 3 0 R >> /XObject << /Im1 4 0 R >> >> >>" % len(objs))
        kids.append(len(objs))
    objs[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    trailer = b""
    if xmp:
        objs.append(b"<< /Type /Metadata /Subtype /XML /Length %d >>\nstream\n%s\nendstream" % (len(xmp), xmp))
        objs[0] = b"<< /Type /Catalog /Pages 2 0 R /Metadata %d 0 R >>" % len(objs)
    if info:
        objs.append(b"<< %s >>" % b" ".join(b"/%s (%s)" % (k.encode(), v.encode()) for k, v in info.items()))
        trailer = b" /Info %d 0 R" % len(objs)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, trailer, xref)
    return bytes(out)


def encrypted(pdf: bytes, password: str = "secret") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=password, algorithm="RC4-128")  # RC4: no crypto library needed
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes(pages: list[list[str]], title: str = "", created=None) -> bytes:
    """A DOCX written by python-docx: a paragraph per line, an explicit page break between pages."""
    import docx

    d = docx.Document()
    for i, lines in enumerate(pages):
        if i:
            d.add_page_break()
        for line in lines:
            d.add_paragraph(line)
    d.core_properties.title = title
    if created:
        d.core_properties.created = created
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


# three pages, each about one thing, so a question lands on one page
PAGES = [
    ["Port news of the week", "",
     "The city council met on Monday to discuss the budget for the coming year.",
     "Councillors agreed to repair the old library roof before the winter rains."],
    ["The harbour of Genoa reopened to container ships after the dredging works finished.",
     "Twelve cranes now unload vessels at the new quay, the port authority said.",
     "Shipping companies expect the terminal to handle more traffic next spring."],
    ["A football club from Turin signed a young goalkeeper from Brazil.",
     "The transfer fee was not disclosed, but fans celebrated outside the stadium."],
]

DOCX_PAGES = [
    ["Club news", "", "The rowing club of Naples elected a new president at its annual meeting."],
    ["Members voted to buy two new boats for the junior team before the regatta season."],
    ["The new stadium in Bari will have forty thousand seats when it opens in two years.",
     "Engineers said the roof would collect rain water for the pitch."],
]


# -- readers -----------------------------------------------------------------------------------
def test_pdf_text_pages_and_properties():
    got = read_pdf(pdf_bytes(PAGES, {"Title": "Port news", "Author": "Desk",
                                     "CreationDate": "D:20230913101500+02'00'"}))
    text, pages = unmark_pages(got.text)
    assert len(pages) == 3 and pages[0] == 0
    assert text[pages[1]:].startswith("The harbour of Genoa")
    assert text[pages[2]:].startswith("A football club")
    assert got.title == "Port news" and got.extra == {"author": "Desk"}
    assert [(d.iso, d.field) for d in got.dates if d.iso] == [("2023-09-13", "/CreationDate")]


def test_docx_text_pages_and_properties():
    got = read_docx(docx_bytes(PAGES, "Port news", datetime.datetime(2023, 9, 13, 8, 0)))
    text, pages = unmark_pages(got.text)
    assert len(pages) == 3
    assert text[pages[1]:].startswith("The harbour of Genoa")
    assert text[pages[2]:].startswith("A football club")
    assert got.title == "Port news"
    assert unmark_pages(read_docx(docx_bytes([PAGES[0] + PAGES[1]])).text)[1] is None  # no breaks
    assert (got.dates[0].iso, got.dates[0].source, got.dates[0].field) == (
        "2023-09-13", "docx-properties", "dcterms:created")


def test_wrapped_pdf_lines_become_sentences_again():
    wrapped = ["Genoa port news", "",
               "The harbour of Genoa reopened to container ships after the dredg-",
               "ing works finished, and twelve cranes now unload vessels at the",
               "new quay, the port authority said on Monday.",
               "Traffic is expected to grow."]
    text, _ = unmark_pages(read_pdf(pdf_bytes([wrapped])).text)
    assert text.split("\n") == [
        "Genoa port news", "The harbour of Genoa reopened to container ships after the dredging "
        "works finished, and twelve cranes now unload vessels at the new quay, the port authority "
        "said on Monday.", "Traffic is expected to grow."]
    assert unwrap_lines("阿里巴巴宣布通义千问向公众开放阿里巴巴宣布\n通义千问向公众开放。\n短\n") == (
        "阿里巴巴宣布通义千问向公众开放阿里巴巴宣布通义千问向公众开放。\n短\n")


def test_page_arithmetic():
    # pages start at 0, 100 and 200 of the text; an empty page starts where the next one does
    assert [page_of({"pages": [0, 100, 200]}, o) for o in (0, 99, 100, 250)] == [1, 1, 2, 3]
    assert page_of({"pages": [0, 100, 100, 200]}, 150) == 3
    meta = chunk_pages([0, 100, 200], 90, 210)
    assert meta == {"page": 1, "page_breaks": [100, 200]}
    assert [page_of(meta, o) for o in (95, 150, 205)] == [1, 2, 3]
    assert chunk_pages(None, 0, 10) == {} and page_of({}, 5) is None


@pytest.mark.parametrize("make,message", [
    (lambda: pdf_bytes(PAGES, image_only=True), "has no text layer (a scanned PDF?): run OCR first"),
    (lambda: encrypted(pdf_bytes(PAGES)), "encrypted"),
    (lambda: pdf_bytes(PAGES)[:400], "cannot be read"),
])
def test_unreadable_pdfs_are_clear_errors(make, message):
    with pytest.raises(RagError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        read_pdf(make())


def test_pdf_encrypted_only_against_editing_is_read():
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(PAGES))))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    assert "harbour of Genoa" in read_pdf(out.getvalue()).text


def test_scan_checks_the_signature_of_binary_files(tmp_path):
    (tmp_path / "fake.pdf").write_bytes(b"Just some text pretending to be a PDF.")
    (tmp_path / "fake.docx").write_bytes(b"Not a zip archive at all.")
    (tmp_path / "locked.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500))
    (tmp_path / "real.pdf").write_bytes(pdf_bytes(PAGES))
    scan = scan_folder_or_files([tmp_path])
    assert [f.id for f in scan.files] == ["real"]
    assert sorted(m.split(" (")[0].split(":")[0] for _, m in scan.errors) == [
        "a password-protected DOCX", "not a DOCX file", "not a PDF file"]


def test_pdf_document_fields(tmp_path):
    f = tmp_path / "port.pdf"
    f.write_bytes(pdf_bytes(PAGES, {"CreationDate": "D:20230913101500+02'00'"}))
    doc = load_file(f)
    assert doc.title == "Port news of the week"  # no /Title: the first line
    assert (doc.date, doc.extra["date_source"], doc.extra["date_field"]) == (
        "2023-09-13", "pdf-properties", "/CreationDate")
    assert doc.extra["pages"][0] == 0 and len(doc.extra["pages"]) == 3
    assert doc.text[doc.extra["pages"][1]:].startswith("The harbour")
    # a dateline in the text says more about publication than the file's creation date
    f.write_bytes(pdf_bytes([["Sept. 13, 2023 - Port news"] + PAGES[0][2:]] + PAGES[1:],
                            {"CreationDate": "D:20240101000000Z"}))
    doc = load_file(f)
    assert (doc.date, doc.extra["date_source"]) == ("2023-09-13", "dateline")


def test_pdf_xmp_publication_date_is_explicit(tmp_path):
    xmp = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
           b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
           b'xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/"><prism:publicationDate>'
           b'2023-09-12</prism:publicationDate></rdf:Description></rdf:RDF></x:xmpmeta>'
           b'<?xpacket end="w"?>')
    f = tmp_path / "port.pdf"
    f.write_bytes(pdf_bytes([["Sept. 13, 2023 - Port news"] + PAGES[0][2:]],
                            {"CreationDate": "D:20240101000000Z"}, xmp=xmp))
    doc = load_file(f)
    # a publisher's own publication date beats both the dateline and the file's creation date
    assert (doc.date, doc.extra["date_source"], doc.extra["date_field"]) == (
        "2023-09-12", "pdf-properties", "prism:publicationDate")


def test_uploads_accept_pdf_and_docx(tmp_path):
    from rag.corpus import save_upload

    assert safe_upload_name("port.pdf") == "port.pdf" and safe_upload_name("port.docx") == "port.docx"
    save_upload(tmp_path, "port.docx", docx_bytes(PAGES))
    with pytest.raises(RagError, match="no text layer"):
        save_upload(tmp_path, "scan.pdf", pdf_bytes(PAGES, image_only=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["port.docx"]


# -- through the real Bot ----------------------------------------------------------------------
def test_ingest_pdf_and_docx_and_cite_the_page(tmp_path, make_bot):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "port.pdf").write_bytes(pdf_bytes(PAGES, {"CreationDate": "D:20230913101500Z"}))
    (corpus / "club.docx").write_bytes(docx_bytes(DOCX_PAGES, "Club news", datetime.datetime(2023, 9, 14)))
    (corpus / "scanned.pdf").write_bytes(pdf_bytes(PAGES, image_only=True))
    (corpus / "locked.pdf").write_bytes(encrypted(pdf_bytes(PAGES)))
    (corpus / "note.txt").write_text("A plain text note about the weather in Milan this weekend.")
    bot = make_bot(corpus)
    rep = bot.ingest()
    assert sorted(rep.added) == ["club", "note", "port"]
    errors = {path.rsplit("/", 1)[-1]: message for path, message in rep.errors}
    assert sorted(errors) == ["locked.pdf", "scanned.pdf"]
    assert "no text layer (a scanned PDF?): run OCR first" in errors["scanned.pdf"]
    assert "encrypted" in errors["locked.pdf"] and "unprotected copy" in errors["locked.pdf"]

    passages = [p for p in bot.search("When did the harbour of Genoa reopen to container ships?", k=4)
                if p.doc_id == "port"]
    assert passages and passages[0].page in (1, 2)
    cites = make_citations([Sentence("The harbour of Genoa reopened to container ships", [1])], passages)
    assert cites[0].page == 2 and cites[0].quote.startswith("The harbour of Genoa reopened")
    passages = [p for p in bot.search("How many seats does the new stadium in Bari have?", k=4)
                if p.doc_id == "club"]
    cites = make_citations([Sentence("The new stadium in Bari will have forty thousand seats", [1])],
                           passages)
    assert cites[0].page == 3 and "forty thousand seats" in cites[0].quote
    # a text file's passages have no pages
    note = [p for p in bot.search("weather in Milan", k=4) if p.doc_id == "note"]
    assert note and note[0].page is None
    docs = bot.store.documents()
    assert (docs["port"].metadata["day"], docs["club"].metadata["date_source"]) == (19613, "docx-properties")
    # unchanged files are not read again; the unreadable ones are reported again
    again = bot.ingest()
    assert sorted(again.unchanged) == ["club", "note", "port"] and again.chunks_embedded == 0
    assert len(again.errors) == 2
