"""rag_ui: the Gradio chat UI, a front end over ``rag.bot.Bot`` outside the runtime package.

``rag_ui.app`` holds the layout, the handlers and ``main`` (started by ``python app.py`` and
``rag chat``); ``rag_ui.render`` the HTML, CSS and JS. The UI changes the corpus only through
``Bot`` (``add_uploads``, ``delete_document``) and touches no files itself. Importing
``rag_ui`` is cheap; gradio loads only when the UI is built.
"""
