"""How Plakar Control Plane runs: the embedded single-machine stack and its supervisor."""
