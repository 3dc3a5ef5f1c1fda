"""The search tier: a local tantivy index, ingestion, answer composition and a sufficiency gate.

Entry points: ``backends.search.backend.build`` (the ``tantivy`` backend factory),
``backends.search.ingest.ingest_paths`` / ``index_stats`` / ``build_demo_index`` (the CLI's index commands).
"""
