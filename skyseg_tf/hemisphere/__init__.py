"""Sky from below: fisheye lens geometry, sky view factor, panoramas."""
