"""Canonical menus: the model, its validation, storage and CRUD."""
