"""Named presets: whole re-upload pipelines as transform chains.

Platform parameters are published or measured values with a stated confidence - A: first-party
statement, B: consistent third-party measurements, C: secondary or conflicting reports, design:
a plausible pipeline rather than a measured one (research/transforms.md sections 3 and 7).
``preset:NAME`` selects one wherever a transform chain is accepted.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass

from harness.core.errors import UnknownNameError
from transforms.base import Chain, parse_chain


@dataclass(frozen=True)
class Preset:
    """A named re-upload pipeline."""

    chain: str
    source: str
    confidence: str  # A first-party statement, B consistent measurements, C secondary, design


_NO_UP = "upscale=False"
PRESETS: dict[str, Preset] = {
    "generic_social": Preset(
        f"resize(long_side=2048, filter='lanczos', {_NO_UP})|jpeg(quality=80)|strip_metadata",
        "typical platform cap and quality (research/transforms.md section 7)",
        "B",
    ),
    "twitter_x_like": Preset(
        f"resize(long_side=4096, filter='lanczos', {_NO_UP})|jpeg(quality=85)|strip_metadata",
        "Twitter engineering, Dec 2018: JPEG q85, 4096 px cap (may predate X)",
        "A (quality), B (size)",
    ),
    "facebook_like": Preset(
        f"resize(long_side=2048, filter='lanczos', {_NO_UP})|jpeg(quality=75)|strip_metadata",
        "third-party tests: 2048 px, quality about 70-85 (unpublished)",
        "C",
    ),
    "instagram_feed_like": Preset(
        "crop_to_aspect(aspect=1.91, mode='at_most')|crop_to_aspect(aspect=0.8, mode='at_least')|"
        f"resize(long_side=1080, filter='lanczos', {_NO_UP})|jpeg(quality=80)|strip_metadata",
        "guides and tests: aspect 4:5..1.91:1, 1080 px, quality 70-85",
        "C",
    ),
    "instagram_story_like": Preset(
        "pad_to_aspect(aspect=0.5625, fill='blur')|"
        f"resize(long_side=1920, filter='lanczos', {_NO_UP})|jpeg(quality=80)",
        "1080 x 1920 stories with a blurred background fill",
        "C",
    ),
    "whatsapp_like": Preset(
        f"resize(long_side=1600, filter='bilinear', {_NO_UP})|jpeg(quality=70)|strip_metadata",
        "third-party tests: 1600 px (older 1280), quality 50-80",
        "C",
    ),
    "whatsapp_forwarded_2x": Preset(
        f"resize(long_side=1600, filter='bilinear', {_NO_UP})|jpeg(quality=70)|"
        f"resize(long_side=1600, filter='bilinear', {_NO_UP})|jpeg(quality=70)|strip_metadata",
        "whatsapp_like applied twice (a forward of a forward)",
        "C",
    ),
    "telegram_like": Preset(
        f"resize(long_side=1280, filter='lanczos', {_NO_UP})|jpeg(quality=82)",
        "one measured test: 6000x4000 -> 1280x853; quality about 80-87",
        "C",
    ),
    "screenshot_reshare": Preset(
        "screenshot_frame(device='phone', area=0.6)|png|"
        f"resize(long_side=4096, filter='lanczos', {_NO_UP})|jpeg(quality=85)",
        "a phone screenshot of the post, reshared on a Twitter-like platform; tall 9:19.5 frame "
        "exercises Pillow 13's resize-order change",
        "design",
    ),
    "meme_repost": Preset(
        "caption_bar(position='top', height=0.2)|jpeg(quality=75)|"
        f"resize(long_side=1080, filter='lanczos', {_NO_UP})|jpeg(quality=70)",
        "meme caption, saved, reposted",
        "design",
    ),
    "generation_loss_2": Preset(
        "jpeg_generations(n=2, quality=75, jitter=1)", "two download / re-upload cycles", "design"
    ),
    "generation_loss_5": Preset(
        "jpeg_generations(n=5, quality=75, jitter=1)", "five download / re-upload cycles", "design"
    ),
    "generation_loss_10": Preset(
        "jpeg_generations(n=10, quality=75, jitter=1)", "ten download / re-upload cycles", "design"
    ),
    "link_preview": Preset(
        "thumbnail(long_side=480)|jpeg(quality=70)",
        "link-preview cards (Pillow thumbnail)",
        "design",
    ),
    "cdn_webp": Preset(
        f"resize(long_side=1080, filter='lanczos', {_NO_UP})|webp(quality=75)",
        "CDN WebP delivery",
        "C",
    ),
    "cdn_avif": Preset(
        f"resize(long_side=1080, filter='lanczos', {_NO_UP})|avif(quality=50)",
        "CDN AVIF delivery (pixels depend on the libavif version)",
        "C",
    ),
    "avatar": Preset(
        "crop_to_aspect(aspect=1.0)|"
        f"resize(long_side=320, filter='lanczos', {_NO_UP})|jpeg(quality=80)",
        "square profile picture",
        "design",
    ),
}


def preset(name: str) -> Chain:
    """The chain of a named preset, labelled ``preset:NAME``."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else f" Known: {', '.join(PRESETS)}."
        raise UnknownNameError(f"Unknown preset {name!r}.{hint}")
    return dataclasses.replace(parse_chain(PRESETS[name].chain), label=f"preset:{name}")
