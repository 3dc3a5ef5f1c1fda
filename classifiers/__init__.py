"""The tier classifier: an embedding model plus a small calibrated head, trained on labelled requests."""
