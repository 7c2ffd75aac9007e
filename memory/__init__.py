"""The memory bank: SQLite store, embeddings, recall. Never imports `assistant` or `ui`."""
