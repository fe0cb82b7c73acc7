"""The app's pages as plain data: sections in sidebar order, each page's file under ``pages/``, its
sidebar title and icon, the heading it shows (its ``st.title``), its url path, and which one is the
default (served at ``/``).

``dashboard/app.py`` builds its ``st.navigation`` from ``SECTIONS``; the browser tests and the
browser benchmark (``tests/support/``) read the same list instead of parsing ``app.py``. No
Streamlit here, so it imports anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"
NAV_KEY = "app_pages"  # the sidebar's box of page links: CSS class "st-key-app_pages" (dashboard/app.py)


@dataclass(frozen=True)
class Page:
    file: str  # under pages/
    title: str  # in the sidebar
    icon: str  # a Material Symbols name, ":material/<name>:"
    heading: str  # the page's own st.title, the h1 a browser waits for
    default: bool = False

    @property
    def url_path(self) -> str:
        """Where the page is served: "" for the default page (the app's root), else the file's
        stem (what ``st.Page`` derives from the file name)."""
        return "" if self.default else Path(self.file).stem

    @property
    def path(self) -> Path:
        return PAGES_DIR / self.file


SECTIONS: dict[str, tuple[Page, ...]] = {
    "": (
        Page("home.py", "Home", ":material/home:", "Diffusion Lab", default=True),
        Page("performance.py", "Performance", ":material/speed:", "Performance"),
    ),
    "Part A · Diffusion": (
        Page("a0_text_to_image.py", "Text to image", ":material/text_fields:", "Text to image"),
        Page("a1_forward.py", "Forward process", ":material/blur_on:", "Forward process"),
        Page("a2_denoising.py", "Denoising compared", ":material/compare:", "Denoising compared"),
        Page("a3_sampling.py", "Sampling and CFG", ":material/auto_awesome:",
             "Sampling and classifier-free guidance"),
        Page("a4_image_to_image.py", "Image-to-image", ":material/brush:", "Image-to-image"),
        Page("a5_illusions.py", "Illusions", ":material/flip:", "Illusions"),
    ),
    "Part B · Training & flow matching": (
        Page("b1_denoiser.py", "Single-step denoiser", ":material/cleaning_services:",
             "Single-step denoiser"),
        Page("b2_flow.py", "Flow matching", ":material/air:", "Flow matching"),
        Page("b3_training_lab.py", "Training lab", ":material/model_training:", "Training lab"),
        Page("b4_playground.py", "2D playground", ":material/scatter_plot:", "2D playground"),
        Page("ab_ddpm_vs_flow.py", "DDPM ↔ flow matching", ":material/swap_horiz:", "DDPM ↔ flow matching"),
        Page("c1_fewer_steps.py", "Fewer steps", ":material/fast_forward:", "Fewer steps"),
        Page("c2_check_your_code.py", "Check your code", ":material/fact_check:", "Check your code"),
    ),
}


def all_pages() -> list[Page]:
    """Every page, in sidebar order."""
    return [p for pages in SECTIONS.values() for p in pages]


def present_pages() -> list[Page]:
    """The pages whose file exists in this copy, in sidebar order."""
    return [p for p in all_pages() if p.path.exists()]


def by_url_path(path: str) -> Page:
    """The page served at ``path`` ("" is the default page); KeyError when none is."""
    for p in all_pages():
        if p.url_path == path:
            return p
    raise KeyError(path)
