"""The library every service of Plakar Control Plane imports."""
