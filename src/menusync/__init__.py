"""menusync: reliable menu synchronization from restaurant systems to delivery platforms."""

__version__ = "0.1.0"
