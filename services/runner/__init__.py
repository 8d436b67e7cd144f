"""Runner: claims due jobs from the work queue and runs plakar for them."""
