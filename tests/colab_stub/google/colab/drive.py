"""`drive.mount` as Colab's behaves where it matters: a mount point that already holds
files is refused, so a notebook that writes before mounting fails here too."""

import os
from pathlib import Path


def mount(mountpoint: str, force_remount: bool = False) -> None:
    path = Path(mountpoint)
    if path.exists() and any(path.iterdir()):
        raise ValueError("Mountpoint must not already contain files")
    # The stand-in's "Drive" is a folder the test chose, linked at the mount point.
    backing = Path(os.environ["FAKE_DRIVE_BACKING"])
    (backing / "MyDrive").mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.rmdir()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(backing, target_is_directory=True)
    print(f"Mounted at {mountpoint}")
