"""``python -m datasets_benign``: rebuild the embedded corpus manifest (a deliberate act)."""

from datasets_benign.skimage_corpus import write_manifest

print(f"wrote {write_manifest()}")
