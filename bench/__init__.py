"""Performance benchmark: the bot against the raw libraries it wraps, in one run.

    python -m bench            # full run (< 30 min on 2 cores) -> bench/results.json, BENCHMARKS.md
    python -m bench --quick    # small sizes, few repeats, for checking (-> a temp folder)
    python -m bench --quick --sections retrieval,server --out /tmp/r.json --md /tmp/r.md

Run it from the checkout (``make bench``): this package is not installed with ``rag``.

The machine is shared and noisy, so every comparison is made inside the same run with the
two sides interleaved (ours, raw, raw, ours, ...) and summarised by medians. Sections:

1. ingest       ``Bot.ingest`` into a fresh store vs ``SentenceTransformer.encode`` of the same
                chunk texts; unchanged re-ingest vs first; ``rag ingest`` as a process, twice.
2. retrieval    1k/10k/100k-chunk stores (synthetic vectors beside recombined corpus sentences,
                cached under ~/.cache/rag-bench): dense, keyword, fused vs a raw Chroma query.
3. server       the 10k store copied into a ``chroma run`` server vs embedded.
4. answer       ``Bot.stream`` vs ``Llama.create_completion`` on the identical rendered prompt.
5. peer         the stock LlamaIndex recipe (VectorStoreIndex on Chroma + CitationQueryEngine).
6. memory       peak RSS of ``rag ask``, of the raw libraries doing the same work, of ``app.py``.
7. answer_1_5b  section 4 for the 1.5B preset, when installed and the time budget allows.

Modules: ``harness`` (timing, statistics, contention, budgets, processes, machine),
``synthetic`` (synthetic articles and cached stores), one module per section (``ingest``,
``retrieval``, ``server``, ``answer``, ``peer``, ``memory``), ``report`` (targets and
BENCHMARKS.md), ``pipeline`` (the only calls into the bot's answering internals).

The benchmark measures; it changes nothing in the bot, and writes to stores only through
``rag.store.Store``'s public methods. Stores are built in temporary folders (the retrieval
stores in the cache folder); the model cache is the default one.
"""
