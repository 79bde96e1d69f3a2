"""IDE-R from the console: a library of boot images (:mod:`.library`) and booting devices from them while
watching the boot (:mod:`.boot`)."""
