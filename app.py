"""The chat UI: ``python app.py [--port N] [--host H]`` (also ``rag chat``); see ``rag_ui.app``."""
from rag_ui.app import main

if __name__ == "__main__":
    raise SystemExit(main())
