"""The images the tests build: the local base images (build_base_images.sh, made by the set-up
and kept), and the box FROM them."""

import subprocess
from pathlib import Path

from local.box import build_box_image

BUILD_BASE_IMAGES = Path(__file__).with_name("build_base_images.sh")


def build_base_images() -> None:
    subprocess.run(["bash", str(BUILD_BASE_IMAGES)], check=True)


def build_images() -> None:
    build_base_images()
    build_box_image()
