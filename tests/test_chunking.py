from hypothesis import given, settings, strategies as st

from rag.chunking import chunk_document, count_tokens, sentence_spans


def test_worked_example():
    # "One two." is 3 tokens, "Three four five." 4, "Six." 2: packing under 6 tokens
    text = "One two. Three four five. Six."
    chunks = chunk_document("d", text, max_tokens=6)
    assert [c.text for c in chunks] == ["One two.", "Three four five. Six."]
    assert [(c.start, c.end) for c in chunks] == [(0, 8), (9, 30)]


def test_sentence_spans_keep_initials_and_cjk():
    text = "The U.S. Congress met. 通义千问开放了。它很好！\nNext line"
    spans = [text[s:e] for s, e in sentence_spans(text)]
    assert spans == ["The U.S. Congress met.", "通义千问开放了。", "它很好！", "Next line"]


words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(words, st.sampled_from([" ", ". ", "\n", "。", "! ", "  \n\n", ", "])), max_size=80),
       st.integers(min_value=3, max_value=60))
def test_spans_round_trip(parts, max_tokens):
    text = "".join(w + sep for w, sep in parts)
    chunks = chunk_document("doc", text, max_tokens=max_tokens)
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert c.text == c.text.strip() and c.text
    # chunks are ordered, disjoint, and cover every non-space character
    covered = set()
    for a, b in zip(chunks, chunks[1:]):
        assert a.end <= b.start
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(ch.isspace() for i, ch in enumerate(text) if i not in covered)


def test_chunks_respect_token_budget_and_ids_are_stable():
    text = " ".join(f"Sentence number {i} talks about Alibaba and Qwen." for i in range(60))
    a = chunk_document("doc", text, max_tokens=50)
    b = chunk_document("doc", text, max_tokens=50)
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)
    assert all(count_tokens(c.text) <= 50 for c in a)
    # an edit changes only the ids of the chunks it touches
    edited = text.replace("Sentence number 59", "Sentence number fifty-nine")
    c = chunk_document("doc", edited, max_tokens=50)
    assert [x.id for x in c[:-1]] == [x.id for x in a[:-1]] and c[-1].id != a[-1].id


def test_no_chunk_is_truncated_by_the_embedder(embedder):
    # Chinese text costs many more word pieces than tiktoken tokens: the embedder's check splits
    text = "阿里巴巴宣布通义千问将于九月十三日起向公众开放，" * 40 + "。"
    chunks = chunk_document("zh", text, max_tokens=400, pieces=embedder)
    assert len(chunks) > 1
    assert embedder.max_seq_length == 512  # read from the model folder (multilingual-e5-small), not assumed
    assert all(embedder.word_pieces(c.text) <= embedder.max_seq_length for c in chunks)
    assert "".join(c.text for c in chunks) == text.strip()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Alibaba", "通义千问", "modello", "Qwen2.5-Coder", "x" * 40, "é",
                                           "https://example.com/a_b", "42%", "l'intelligenza"]),
                          st.sampled_from([" ", ". ", "\n", "。", "", ", ", "-"])), max_size=120),
       st.integers(min_value=8, max_value=150))
def test_packing_by_added_word_pieces_closes_chunks_where_exact_counting_does(embedder, parts, max_tokens):
    """The chunker adds up its units' word pieces and counts a chunk exactly only past the limit;
    it must cut where counting every step exactly would (same chunks, same ids)."""
    from rag.chunking import _pack, _split_long

    text = "".join(w + sep for w, sep in parts)
    units = [u for s, e in sentence_spans(text) for u in _split_long(text, s, e, max_tokens, embedder)]
    counts = embedder.count_pieces([text[s:e] for s, e in units])
    exact = _pack(text, units, max_tokens, embedder, None)
    added = _pack(text, units, max_tokens, embedder, counts)
    over = any(embedder.word_pieces(text[s:e]) > embedder.piece_limit for s, e in added)
    assert added == exact or over  # an estimate short of the count shows as a chunk over the limit,
    assert [(c.start, c.end) for c in chunk_document("d", text, max_tokens, pieces=embedder)] == exact  # recounted
