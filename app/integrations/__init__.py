"""One thin adapter per outside service, built on its official SDK, with base URLs from settings so tests can
point the real SDK at a loopback fake. No SDK call happens anywhere else."""
