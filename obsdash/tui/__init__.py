"""The terminal dashboard (Textual): one Screen per view over the store, every query in a worker thread."""
