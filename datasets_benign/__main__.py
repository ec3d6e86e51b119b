"""``python -m datasets_benign``: rebuild the embedded corpus manifest (a deliberate, reviewed act)."""

from datasets_benign.skimage_corpus import write_manifest

print(f"wrote {write_manifest()}")
