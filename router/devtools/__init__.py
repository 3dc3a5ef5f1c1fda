"""Development helpers used by the Makefile and CI."""
